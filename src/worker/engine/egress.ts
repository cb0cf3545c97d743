import { execFile } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { promisify } from 'node:util';
import { parseAllowEntry, type EgressPolicy } from '../../shared/calls/egress.js';
import { SlotqError } from '../../shared/errors.js';

const run = promisify(execFile);

/**
 * A slot's egress policy as packet filter rules in the container's own network namespace, written by the
 * worker from outside (nsenter + iptables-restore, atomically): the slot has no capability to change them.
 * OUTPUT drops everything but loopback, replies to connections made to the slot, and the allow list.
 */
export async function applyEgress(pid: number, policy: EgressPolicy): Promise<{ rules: number }> {
  const allow = policy === 'none' ? [] : policy.allow.map(parseAllowEntry);
  const v4: string[] = [];
  const v6: string[] = [];
  for (const rule of allow) {
    const addrs = isIP(rule.host) ? [rule.host] : (await lookup(rule.host, { all: true }).catch(() => [])).map((a) => a.address);
    if (!addrs.length) throw new SlotqError('INVALID_ARGS', `egress: ${rule.host} does not resolve on the worker`, { retryable: false });
    for (const a of addrs) {
      const dst = `-d ${a}${rule.cidr !== undefined ? `/${rule.cidr}` : ''}`;
      const lines = rule.port === undefined ? [`-A OUTPUT ${dst} -j ACCEPT`] : ['tcp', 'udp'].map((p) => `-A OUTPUT ${dst} -p ${p} --dport ${rule.port} -j ACCEPT`);
      (isIP(a) === 6 ? v6 : v4).push(...lines);
    }
  }
  const table = (extra: string[]): string =>
    ['*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT DROP [0:0]', '-A OUTPUT -o lo -j ACCEPT', '-A OUTPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT', ...extra, 'COMMIT', ''].join('\n');
  await restore('iptables-restore', pid, table(v4));
  // No IPv6 in the namespace (Docker's default) leaves nothing to filter; any other failure refuses the policy.
  await restore('ip6tables-restore', pid, table(v6)).catch(async (err: unknown) => {
    const { stdout } = await run('nsenter', ['-t', String(pid), '-n', 'cat', '/proc/net/if_inet6']).catch(() => ({ stdout: '' }));
    if (stdout.split('\n').some((l) => l.trim() && !l.trim().endsWith(' lo'))) throw err;
  });
  return { rules: v4.length + v6.length };
}

async function restore(tool: string, pid: number, input: string): Promise<void> {
  try {
    await new Promise<void>((resolve, reject) => {
      const child = execFile('nsenter', ['-t', String(pid), '-n', tool], { timeout: 10_000 }, (err, _out, stderr) => (err ? reject(new Error(`${tool}: ${stderr.trim() || err.message}`)) : resolve()));
      child.stdin?.end(input);
    });
  } catch (err) {
    throw new SlotqError('INVALID_ARGS', `egress policy cannot be enforced on this worker (${(err as Error).message}): it needs root on the worker's host with nsenter and iptables`, { retryable: false, details: { cause: 'egress_unenforceable' } });
  }
}
