// JSON-RPC method table for status, models and logs. Prompt/job methods live in jobs.ts and are merged in main.ts.
import type { StatusHub } from '../status/hub';
import type { Supervisor } from '../runtime/supervisor';
import type { RpcConnection, RpcHandlers } from './ws';
import { asObject, optNumber, optString, reqString } from './validate';
import type { ModelStatus, ProtocolVersion, Snapshot } from '../../shared/protocol';
import { SlotwiseError } from '../../shared/errors';

/** The most lines logs.tail returns (`slotwise logs -n`). */
export const LOGS_TAIL_MAX_LINES = 5000;

export interface CoreRpcDeps {
  version: string;
  hub: StatusHub;
  supervisor: Supervisor;
  /** `models.start` (`slotwise up`): the loader's memory-checked start; default Supervisor.startModel. */
  startModel?: (name: string) => ModelStatus | Promise<ModelStatus>;
  /** `models.restart`: the loader's, which starts a model that is down as `up` does; default Supervisor.restartModel. */
  restartModel?: (name: string) => Promise<ModelStatus>;
  /** Called by `daemon.stop`; resolves once the reply may be sent (shutdown continues after). */
  requestShutdown: () => void;
}

const PROTOCOL: ProtocolVersion = 1;

export function coreHandlers(deps: CoreRpcDeps): RpcHandlers {
  const { hub, supervisor } = deps;
  const pushers = new WeakMap<RpcConnection, (s: Snapshot) => void>();
  return {
    'daemon.hello': (params) => {
      const p = asObject(params, 'daemon.hello');
      const theirs = optNumber(p, 'protocol', 'daemon.hello', { integer: true });
      if (theirs !== undefined && theirs !== PROTOCOL) {
        throw new SlotwiseError('SW_ERR_PROTOCOL_MISMATCH', `client speaks protocol ${theirs}, this daemon ${PROTOCOL} (version ${deps.version}) — update the older side`);
      }
      return { protocol: PROTOCOL, version: deps.version };
    },
    'status.get': () => hub.snapshot(),
    'status.subscribe': (_params, conn) => {
      if (!pushers.has(conn)) {
        const push = (snapshot: Snapshot): void => conn.notify('status', { snapshot });
        pushers.set(conn, push);
        hub.on('snapshot', push);
        conn.onClose(() => hub.off('snapshot', push));
      }
      return hub.snapshot();
    },
    'status.unsubscribe': (_params, conn) => {
      const push = pushers.get(conn);
      if (push) hub.off('snapshot', push);
      pushers.delete(conn);
      return { ok: true };
    },
    'models.list': () => hub.snapshot().models,
    'models.start': (params) => (deps.startModel ?? ((n: string) => supervisor.startModel(n)))(reqString(asObject(params, 'models.start'), 'model', 'models.start')),
    'models.stop': (params) => supervisor.stopModel(reqString(asObject(params, 'models.stop'), 'model', 'models.stop')),
    'models.restart': (params) => (deps.restartModel ?? ((n: string) => supervisor.restartModel(n)))(reqString(asObject(params, 'models.restart'), 'model', 'models.restart')),
    'logs.tail': (params) => {
      const p = asObject(params, 'logs.tail');
      const model = optString(p, 'model', 'logs.tail');
      if (model !== undefined) supervisor.modelConfig(model); // unknown model → SW_ERR_MODEL_NOT_FOUND
      return {
        lines: supervisor.logsTail({
          model,
          instance: optString(p, 'instance', 'logs.tail'),
          lines: optNumber(p, 'lines', 'logs.tail', { integer: true, min: 1, max: LOGS_TAIL_MAX_LINES }),
        }),
      };
    },
    'daemon.stop': () => {
      setImmediate(deps.requestShutdown);
      return { ok: true };
    },
  };
}
