import { WORKSPACE_DIR } from '../shared/schemas.js';

/**
 * Path safety for every file tool and artifact helper (contract §4): a user path is relative to
 * /workspace, resolved in the container after following symlinks (`realpath`), and refused when the
 * result is outside /workspace. NUL bytes and over-long paths never get here (zod refuses them).
 */

/** Exit codes of the path-checking prologue and the scripts after it (chosen to be unlikely from real commands). */
export const EXIT = { notFound: 81, outside: 82, notFile: 83, tooLarge: 84, unreadable: 85 } as const;

export const shellQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * Resolves a user path (after following symlinks) into $p, or exits with a code. The outside check comes
 * before the existence check, so a path outside /workspace is refused whether or not it exists (and a
 * dangling symlink pointing out is refused, not "not found").
 */
export const resolvePathScript = (path: string, mustExist: boolean): string =>
  [
    `p=$(realpath -m -- ${shellQuote(path)} 2>/dev/null) || exit ${EXIT.notFound}`,
    `case "$p" in ${WORKSPACE_DIR}|${WORKSPACE_DIR}/*) ;; *) exit ${EXIT.outside} ;; esac`,
    ...(mustExist ? [`[ -e "$p" ] || exit ${EXIT.notFound}`] : []),
  ].join('\n');

/** `/workspace/a/b` → `a/b`; `/workspace` → `.` (a resolved path that passed the prologue). */
export function relativeToWorkspace(resolved: string): string {
  if (resolved === WORKSPACE_DIR) return '.';
  return resolved.startsWith(`${WORKSPACE_DIR}/`) ? resolved.slice(WORKSPACE_DIR.length + 1) : resolved;
}
