// The engine worker: everything that touches the GPU runs here, behind one comlink API.
// All logic lives in EngineService (src/engine/engine_service.ts), which tests drive directly;
// this file only exposes one instance. Errors thrown there cross comlink as Error objects
// with the engine's message.
import * as Comlink from 'comlink';
import type { EngineApi } from '../src/lib/api/engine_api';
import { EngineService } from '../src/engine/engine_service';

const api: EngineApi = new EngineService();

Comlink.expose(api);
