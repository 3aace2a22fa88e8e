// Shared helper for our WGSL kernels: turns a `shaders/*.wgsl` file (imported with `?raw`) plus
// substituted constants into a tfjs WebGPUProgram, and runs it through the active backend.
//
// How tfjs-backend-webgpu 4.22 builds and runs a program (read from dist/webgpu_program.js and
// dist/backend_webgpu.js; everything below is what our shaders may rely on):
//
// 1. Shader assembly (`makeShader`). tfjs prepends, in order:
//    - private vars `localId: vec3<u32>`, `localIndex: u32`, `globalId: vec3<u32>`,
//      `numWorkgroups: vec3<u32>`, `workgroupId: vec3<u32>` (set from the builtins in `_start`),
//      and `fn getGlobalIndex() -> i32`: `globalId.x` when dispatch is [X,1,1], otherwise the
//      linearised workgroup id * flat workgroup size + localIndex;
//    - `struct Uniforms { NAN: f32, INFINITY: f32, <name>Shape, <name>ShapeStrides for each
//      input in variableNames order, outShape, outShapeStrides, [size: i32 if program.size],
//      <program.uniforms verbatim> }` bound as `uniforms`. Shapes are i32 / vec2<i32> / vec3<i32>
//      / vec4<i32> by rank (strides have rank-1 components; a rank-1 tensor gets `i32` strides).
//      The name's first letter is lower-cased: variable `W` gives `uniforms.wShape`.
//    - `@binding(0) var<storage, read_write> result: array<f32 | i32>` (the output), then
//      `@binding(1 + i) var<storage, read> <variableNames[i]>: array<T>`, T = f32 for float32
//      tensors and i32 for int32 AND bool tensors (vec4 if variableComponents[i] == 4);
//    - helpers: `getCoordsFromIndex(i) -> vecN<i32>` (output), `get<Name>CoordsFromIndex`,
//      `get<Name>(d0, d1, ...) -> f32` (NOTE: returns f32 even for int32 inputs, so it rounds
//      values beyond 2^24: read packed words directly as `<name>[i]`, never via get<Name>),
//      `setOutputAtIndex(flat: i32, v: f32)`, `setOutputAtIndexI32(flat, v: i32)`,
//      `setOutputAtCoords(d0, .., v)`, `getOutputIndexFromCoords`, `isnan`, `isinf`.
//    - then our user code, then the entry point:
//        @compute @workgroup_size(program.workgroupSize) fn _start(...builtins) {
//          ...; main(getGlobalIndex());   // if dispatchLayout has only `x` ("flat")
//          ...; main();                   // if dispatchLayout has `y` or `z`
//        }
//      So user code defines `fn main(index: i32)` for a flat layout (the default here) and
//      `fn main()` otherwise, and must NOT declare `@compute`/`@workgroup_size` itself.
//      Module-scope `var<workgroup>` arrays and `const`s in user code are fine.
// 2. Running (`runWebGPUProgram(program, inputs, outDtype, programUniforms?)`):
//    - program.dispatch is the workgroup count we set. If dispatch[0] exceeds
//      maxComputeWorkgroupsPerDimension (65535) and the layout is flat, tfjs silently reshapes it
//      into [ceil(sqrt(X)), ceil(sqrt(X)), 1] (or a cube): kernels that index by workgroup must
//      linearise `workgroupId.x + numWorkgroups.x * (workgroupId.y + numWorkgroups.y *
//      workgroupId.z)` and bounds-check it, since the reshaped grid can hold extra workgroups.
//    - uniform values: tfjs writes NAN, INFINITY, the shapes/strides, `size` (element count of
//      outputShape / outputComponent) itself; our `programUniforms` array follows, one entry
//      `{type: 'int32' | 'uint32' | 'float32', data: number[]}` per field of program.uniforms in
//      the same order (scalars, or vec2/vec4, aligned as WGSL requires).
//    - the pipeline cache key is program.shaderKey + workgroup size + input/output RANKS and
//      dtypes + variable names + broadcast pattern. Full shapes are NOT in it: anything that
//      changes the generated code (substituted constants, shape-dependent branches) must be in
//      our shaderKey, which `makeProgram` builds from op, variant and every constant.
//    - the output buffer is not zeroed (pooled buffers are reused): write every element.
//    - the returned TensorInfo becomes a tf.Tensor via engine().makeTensorFromTensorInfo; tfjs
//      autodiff does not see through it (wrap in tf.customGrad where gradients are needed).
import * as tf from '@tensorflow/tfjs';
import type { WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';
import { webgpuBackend } from '../backend';

export type Constant = number | string;

export interface ProgramSpec {
  /** Op name, e.g. 'linear'; first part of the shaderKey and the pipeline label. */
  op: string;
  /** Variant name, e.g. 'q8_gemv'. */
  variant: string;
  /** WGSL user code with `{{NAME}}` placeholders (a `?raw` import of shaders/<file>.wgsl). */
  wgsl: string;
  /** Values for the placeholders. Every one must be used and every placeholder filled. */
  constants?: Record<string, Constant>;
  /** Input names, bound in this order: `array<f32|i32>` named exactly so in WGSL. */
  variableNames: string[];
  outputShape: number[];
  workgroupSize: [number, number, number];
  /** Workgroup counts. */
  dispatch: [number, number, number];
  /** Extra WGSL uniform fields, e.g. `'n : i32, inF : i32,'`; values passed to runProgram. */
  uniforms?: string;
  /** Adds `uniforms.size` (element count of the output). */
  size?: boolean;
  /** Default: flat over all output dims, so user code declares `fn main(index: i32)`. */
  dispatchLayout?: { x: number[]; y?: number[]; z?: number[] };
}

export interface Uniform {
  type: 'int32' | 'uint32' | 'float32';
  data: number[];
}

export const i32u = (...v: number[]): Uniform => ({ type: 'int32', data: v });
export const u32u = (...v: number[]): Uniform => ({ type: 'uint32', data: v });
export const f32u = (...v: number[]): Uniform => ({ type: 'float32', data: v });

/** Replaces every `{{NAME}}` in `wgsl`; throws naming the op if one is missing or unused. */
export function substitute(wgsl: string, constants: Record<string, Constant>, where: string): string {
  const used = new Set<string>();
  const out = wgsl.replace(/\{\{(\w+)\}\}/g, (_, name: string) => {
    if (!(name in constants)) throw new Error(`${where}: shader placeholder {{${name}}} has no value`);
    used.add(name);
    return String(constants[name]);
  });
  for (const name of Object.keys(constants)) {
    if (!used.has(name)) throw new Error(`${where}: constant ${name} is not used by the shader`);
  }
  return out;
}

/** shaderKey naming op, variant and every substituted constant (sorted, so order is irrelevant). */
export function shaderKeyOf(op: string, variant: string, constants: Record<string, Constant>): string {
  const parts = Object.keys(constants)
    .sort()
    .map((k) => `${k}=${constants[k]}`);
  return [op, variant, ...parts].join('_');
}

export function makeProgram(spec: ProgramSpec): WebGPUProgram {
  const constants = spec.constants ?? {};
  const where = `${spec.op}/${spec.variant}`;
  const code = substitute(spec.wgsl, constants, where);
  const program: WebGPUProgram = {
    variableNames: spec.variableNames,
    outputShape: spec.outputShape,
    shaderKey: shaderKeyOf(spec.op, spec.variant, constants),
    dispatchLayout: spec.dispatchLayout ?? { x: spec.outputShape.map((_, i) => i) },
    dispatch: spec.dispatch,
    workgroupSize: spec.workgroupSize,
    size: spec.size ?? false,
    getUserCode: () => code,
  };
  if (spec.uniforms) program.uniforms = spec.uniforms;
  return program;
}

/** Runs `program` on the WebGPU backend; the result is a new tensor the caller owns. */
export function runProgram(
  program: WebGPUProgram,
  inputs: tf.Tensor[],
  dtype: 'float32' | 'int32',
  uniforms: Uniform[] = [],
): tf.Tensor {
  for (const [i, t] of inputs.entries()) {
    if (t.isDisposed) throw new Error(`${program.shaderKey}: input ${program.variableNames[i]} is disposed`);
  }
  const info = webgpuBackend().runWebGPUProgram(program, inputs, dtype, uniforms);
  return tf.engine().makeTensorFromTensorInfo(info);
}

/** Workgroups to cover `n` items at `perWorkgroup` items each (at least 1). */
export function groupsFor(n: number, perWorkgroup: number): number {
  return Math.max(1, Math.ceil(n / perWorkgroup));
}
