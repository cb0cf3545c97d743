import { Option, type Command } from 'commander';
import { loadConfig, type SlotqOptions } from '../shared/config.js';
import { createLogger } from '../shared/logger.js';
import { startGateway } from '../gateway/gateway.js';
import { configFrom, stopOnSignals, withCommon, type Opts } from './cli-options.js';

/** The gateway's own options (the token comes from SLOTQ_GATEWAY_TOKEN only, never argv: `ps` would show it). */
export function withGateway(cmd: Command): Command {
  return cmd
    .addOption(new Option('--gateway-host <host>', 'address to listen on (without a token: loopback only)').env('SLOTQ_GATEWAY_HOST'))
    .addOption(new Option('--gateway-port <n>', 'HTTP port of the gateway (0 = any free port)').env('SLOTQ_GATEWAY_PORT'))
    .addOption(new Option('--session-ttl-s <s>', 'a session idle for longer is closed, its slots released with reset').env('SLOTQ_GATEWAY_SESSION_TTL_S'))
    .addOption(new Option('--max-body-bytes <n>', 'larger request bodies get 400 TOO_LARGE').env('SLOTQ_GATEWAY_MAX_BODY_BYTES'))
    .addOption(new Option('--default-timeout-s <s>', 'per-call timeout when none is given (s)').env('SLOTQ_DEFAULT_TIMEOUT_S'))
    .addOption(new Option('--lease-ttl-ms <ms>', "a dead gateway's slots return to the pool after this").env('SLOTQ_LEASE_TTL_MS'));
}

/** The gateway settings given on the command line, as strings for loadConfig. */
export function gatewayConfigFrom(o: Opts): SlotqOptions {
  const pick: Record<string, string> = {};
  const map: ReadonlyArray<[string, keyof SlotqOptions]> = [
    ['gatewayHost', 'gatewayHost'],
    ['gatewayPort', 'gatewayPort'],
    ['sessionTtlS', 'gatewaySessionTtlS'],
    ['maxBodyBytes', 'gatewayMaxBodyBytes'],
    ['defaultTimeoutS', 'defaultTimeoutS'],
    ['leaseTtlMs', 'leaseTtlMs'],
  ];
  for (const [option, key] of map) {
    const v = o[option];
    if (typeof v === 'string' && v !== '') pick[key] = v;
  }
  return { ...configFrom(o), ...pick };
}

/** `slotq gateway`: SlotBackend over HTTP/JSON for Python and other languages. */
export function registerGatewayCommand(program: Command): void {
  withGateway(withCommon(program.command('gateway')))
    .description('serve SlotBackend over HTTP/JSON (sessions, acquire/release, execute_batch, artifacts; OpenAPI at /v1/openapi.json) for the Python client')
    .action(async (o: Opts) => {
      const config = loadConfig(gatewayConfigFrom(o));
      const logger = createLogger({ level: config.logLevel, pretty: Boolean(o['pretty']), name: 'slotq-gateway' });
      const gateway = await startGateway({ config, logger });
      stopOnSignals(logger, () => gateway.close());
    });
}
