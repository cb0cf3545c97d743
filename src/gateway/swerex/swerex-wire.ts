import { z } from 'zod';

/**
 * SWE-ReX's wire (swerex.runtime.abstract), field names exactly as theirs. Their pydantic models ignore unknown
 * fields, so these are plain objects (unknown keys dropped), with their defaults.
 */
const sessionName = z.string().min(1).max(200).default('default');
const seconds = z.number().finite().nonnegative();

export const createSessionSchema = z.object({
  startup_source: z.array(z.string()).default([]),
  session: sessionName,
  session_type: z.literal('bash').default('bash'),
  startup_timeout: seconds.default(1),
});

export const bashActionSchema = z.object({
  action_type: z.literal('bash').default('bash'),
  command: z.string(),
  session: sessionName,
  timeout: seconds.nullable().default(null),
  is_interactive_command: z.boolean().default(false),
  is_interactive_quit: z.boolean().default(false),
  check: z.enum(['silent', 'raise', 'ignore']).default('raise'),
  error_msg: z.string().default(''),
  expect: z.array(z.string()).default([]),
});
export const bashInterruptSchema = z.object({
  action_type: z.literal('bash_interrupt'),
  session: sessionName,
  timeout: seconds.default(0.2),
  n_retry: z.number().int().default(3),
  expect: z.array(z.string()).default([]),
});
/** Their Action union is discriminated on action_type, which defaults to "bash". */
export const actionSchema = z.preprocess(
  (v) => (v !== null && typeof v === 'object' && !('action_type' in v) ? { ...v, action_type: 'bash' } : v),
  z.discriminatedUnion('action_type', [bashActionSchema, bashInterruptSchema]),
);
export type BashAction = z.infer<typeof bashActionSchema>;

export const closeSessionSchema = z.object({ session: sessionName, session_type: z.literal('bash').default('bash') });

export const commandSchema = z.object({
  command: z.union([z.string(), z.array(z.string())]),
  timeout: seconds.nullable().default(null),
  shell: z.boolean().default(false),
  check: z.boolean().default(false),
  error_msg: z.string().default(''),
  env: z.record(z.string(), z.string()).nullable().default(null),
  cwd: z.string().nullable().default(null),
  merge_output_streams: z.boolean().default(false),
});
export type SwerexCommand = z.infer<typeof commandSchema>;

export const readFileSchema = z.object({ path: z.string().min(1), encoding: z.string().nullable().default(null), errors: z.string().nullable().default(null) });
export const writeFileSchema = z.object({ content: z.string(), path: z.string().min(1) });
export const uploadFieldsSchema = z.object({
  target_path: z.string().min(1),
  /** FastAPI's Form(bool) reads "true"/"false" (and 1/0, yes/no, on/off). */
  unzip: z
    .string()
    .default('false')
    .transform((s, ctx) => {
      const v = s.trim().toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(v)) return true;
      if (['false', '0', 'no', 'off', ''].includes(v)) return false;
      ctx.addIssue({ code: 'custom', message: `unzip: ${JSON.stringify(s)} is not a boolean` });
      return z.NEVER;
    }),
});

export const isAliveResponse = (): { is_alive: boolean; message: string } => ({ is_alive: true, message: '' });
export const bashObservation = (output: string, exitCode: number | null, expectString = '') => ({ output, exit_code: exitCode, failure_reason: '', expect_string: expectString, session_type: 'bash' as const });

/** The exception classes RemoteRuntime re-raises (it imports class_path's module and calls the class with message). */
export const SWEREX_CLASS = {
  base: 'swerex.exceptions.SwerexException',
  timeout: 'swerex.exceptions.CommandTimeoutError',
  noSession: 'swerex.exceptions.SessionDoesNotExistError',
  sessionExists: 'swerex.exceptions.SessionExistsError',
  nonZero: 'swerex.exceptions.NonZeroExitCodeError',
  syntax: 'swerex.exceptions.BashIncorrectSyntaxError',
  fileNotFound: 'builtins.FileNotFoundError',
  isDirectory: 'builtins.IsADirectoryError',
  permission: 'builtins.PermissionError',
  value: 'builtins.ValueError',
  notImplemented: 'builtins.NotImplementedError',
} as const;
export type SwerexClass = (typeof SWEREX_CLASS)[keyof typeof SWEREX_CLASS];

/** An error the routes answer as swerex-remote does: HTTP 511, {swerexception: {message, class_path, traceback, extra_info}}. */
export class SwerexWireError extends Error {
  constructor(
    readonly classPath: SwerexClass,
    message: string,
    readonly extraInfo: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'SwerexWireError';
  }

  body(): { swerexception: { message: string; class_path: string; traceback: string; extra_info: Record<string, unknown> } } {
    return { swerexception: { message: this.message, class_path: this.classPath, traceback: '', extra_info: this.extraInfo } };
  }
}

/** A Python repr of a string, as their messages quote commands ({command!r}). */
export function pyRepr(s: string): string {
  const q = s.includes("'") && !s.includes('"') ? '"' : "'";
  const body = s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/\r/g, '\\r').replace(/\t/g, '\\t');
  return q + (q === "'" ? body.replace(/'/g, "\\'") : body) + q;
}
