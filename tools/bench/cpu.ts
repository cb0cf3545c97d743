import { readFileSync, readdirSync } from 'node:fs';

/**
 * Where the machine's CPU goes while calls run: a snapshot of CPU time by component, and the difference of
 * two snapshots divided by the calls made in between (µs of CPU per call). Components:
 * - `node`: this process (the bench hosts the producer and the worker);
 * - `redis`: redis-server;
 * - `dockerd`, `containerd` (with its shims and the runc processes they reaped): the engine;
 * - `slots`: every process inside the containers (their cgroups' CPU accounting: supervisor, shells, commands);
 * - `other`: the rest of the machine's busy time (kernel threads, interrupts, other processes).
 * Linux only; a component it cannot read counts as 0.
 */
export type CpuComponent = 'node' | 'redis' | 'dockerd' | 'containerd' | 'slots' | 'other';
export type CpuSnapshot = Record<CpuComponent | 'total', number>;

const TICK_US = 1e6 / 100; // USER_HZ is 100 on Linux

/** utime+stime (+ reaped children's) of every process whose comm starts with one of the names, in µs. */
function processesUs(names: string[], withChildren: boolean): number {
  let ticks = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      if (!names.some((n) => comm.startsWith(n))) continue;
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // fields after comm: state(0) … utime(11) stime(12) cutime(13) cstime(14)
      ticks += Number(f[11]) + Number(f[12]) + (withChildren ? Number(f[13]) + Number(f[14]) : 0);
    } catch {
      // the process ended meanwhile
    }
  }
  return ticks * TICK_US;
}

/** CPU of all Docker containers: cgroup v1 cpuacct (ns) or v2 cpu.stat (µs). */
function containersUs(): number {
  const v1 = '/sys/fs/cgroup/cpuacct/docker';
  try {
    let ns = 0;
    for (const d of readdirSync(v1)) if (/^[0-9a-f]{64}$/.test(d)) ns += Number(readFileSync(`${v1}/${d}/cpuacct.usage`, 'utf8'));
    return ns / 1000;
  } catch {
    // not v1
  }
  let us = 0;
  for (const base of ['/sys/fs/cgroup/system.slice', '/sys/fs/cgroup/docker']) {
    try {
      for (const d of readdirSync(base)) {
        if (!/^(docker-)?[0-9a-f]{64}(\.scope)?$/.test(d)) continue;
        const m = /^usage_usec (\d+)/m.exec(readFileSync(`${base}/${d}/cpu.stat`, 'utf8'));
        if (m) us += Number(m[1]);
      }
    } catch {
      // no such layout
    }
  }
  return us;
}

/** Busy time of the whole machine (all CPUs), from /proc/stat. */
function machineBusyUs(): number {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = cpu;
  return (user! + nice! + system! + irq! + softirq! + (steal ?? 0)) * TICK_US;
}

export function cpuSnapshot(): CpuSnapshot {
  const own = process.cpuUsage();
  const s = {
    node: own.user + own.system,
    redis: processesUs(['redis-server'], false),
    dockerd: processesUs(['dockerd'], true),
    containerd: processesUs(['containerd'], true),
    slots: containersUs(),
    total: machineBusyUs(),
  };
  return { ...s, other: 0 };
}

/** µs of CPU per call by component between two snapshots; `other` is what the components do not explain. */
export function cpuPerCallUs(a: CpuSnapshot, b: CpuSnapshot, calls: number): CpuSnapshot {
  const per = (k: keyof CpuSnapshot): number => Math.round((b[k] - a[k]) / calls);
  const known: CpuComponent[] = ['node', 'redis', 'dockerd', 'containerd', 'slots'];
  const out = Object.fromEntries(known.map((k) => [k, per(k)])) as CpuSnapshot;
  out.total = per('total');
  out.other = Math.max(0, out.total - known.reduce((sum, k) => sum + out[k], 0));
  return out;
}

/** One line: "total 2710 µs/call: node 900, slots 1200, …". */
export const renderCpu = (c: CpuSnapshot): string =>
  `CPU per call ${c.total} µs: ${(['slots', 'node', 'redis', 'dockerd', 'containerd', 'other'] as const).map((k) => `${k} ${c[k]}`).join(', ')}`;
