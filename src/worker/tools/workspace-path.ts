import { WORKSPACE_DIR } from '../../shared/calls/schemas.js';
import { shellQuote } from '../executor/executor-protocol.js';

export { shellQuote } from '../executor/executor-protocol.js';

/**
 * Path safety for every file tool and artifact helper (contract §4): a user path is relative to
 * /workspace, resolved in the container after following symlinks, and refused when the result is outside
 * /workspace. NUL bytes and over-long paths never get here (zod refuses them). The scripts run in slotq's
 * helper shell (busybox), so they behave the same in every image.
 */

/** Exit codes of the path-checking prologue and the scripts after it (chosen to be unlikely from real commands). */
export const EXIT = { notFound: 81, outside: 82, notFile: 83, tooLarge: 84, unreadable: 85 } as const;

/**
 * Resolves a user path into $p like GNU `realpath -m`: symlinks followed as far as the path exists
 * (dangling ones too, by hand, up to 40 hops), the missing rest applied a component at a time, resolved
 * again wherever it exists. Then refuses a result
 * outside /workspace, before the existence check, so a path outside is refused whether or not it exists
 * (and a dangling symlink pointing out is refused, not "not found").
 */
export const resolvePathScript = (path: string, mustExist: boolean): string => resolveScript(shellQuote(path), mustExist);

/** resolvePathScript for a path given as a shell expression (e.g. `"$1"`). */
export const resolveScript = (pathExpr: string, mustExist: boolean): string =>
  [
    'set -f',
    `r=${pathExpr}`,
    `case $r in /*) ;; *) r=${WORKSPACE_DIR}/$r ;; esac`,
    't= n=0',
    'while :; do',
    '  p=$(realpath "$r" 2>/dev/null) && break',
    '  if [ -L "$r" ]; then',
    `    n=$((n + 1)); [ $n -le 40 ] || exit ${EXIT.notFound}`,
    `    l=$(readlink "$r") || exit ${EXIT.notFound}`,
    '    case $l in /*) r=$l ;; *) r=${r%/*}/$l ;; esac',
    '  else',
    '    t=${r##*/}${t:+/$t}; r=${r%/*}; [ -n "$r" ] || r=/',
    '  fi',
    'done',
    // The missing rest, one component at a time, resolved again after each: a `..` may lead back into
    // existing directories, and a symlink met there must be followed (missing/../link-out/x is outside).
    'IFS=/; for c in $t; do case $c in ""|.) continue ;; ..) p=${p%/*}; [ -n "$p" ] || p=/ ;; *) p=${p%/}/$c ;; esac; q=$(realpath "$p" 2>/dev/null) && p=$q; done; unset IFS',
    `case "$p" in ${WORKSPACE_DIR}|${WORKSPACE_DIR}/*) ;; *) exit ${EXIT.outside} ;; esac`,
    ...(mustExist ? [`[ -e "$p" ] || exit ${EXIT.notFound}`] : []),
  ].join('\n');

/** `/workspace/a/b` → `a/b`; `/workspace` → `.` (a resolved path that passed the prologue). */
export function relativeToWorkspace(resolved: string): string {
  if (resolved === WORKSPACE_DIR) return '.';
  return resolved.startsWith(`${WORKSPACE_DIR}/`) ? resolved.slice(WORKSPACE_DIR.length + 1) : resolved;
}
