// Vitest 5 targets Node >= 22; on Node 20 (the project's machines) its error reporter calls
// Map.groupBy, which Node 20 lacks, and a failing test then crashes the reporter instead of
// printing why it failed. Imported by the Vitest configs, which run in the reporter's process.
type GroupBy = <K, T>(items: Iterable<T>, key: (item: T, index: number) => K) => Map<K, T[]>;
const MapWithGroupBy = Map as unknown as { groupBy?: GroupBy };
if (typeof MapWithGroupBy.groupBy !== 'function') {
  MapWithGroupBy.groupBy = <K, T>(items: Iterable<T>, key: (item: T, index: number) => K): Map<K, T[]> => {
    const out = new Map<K, T[]>();
    let i = 0;
    for (const item of items) {
      const k = key(item, i++);
      const group = out.get(k);
      if (group) group.push(item);
      else out.set(k, [item]);
    }
    return out;
  };
}
export {};
