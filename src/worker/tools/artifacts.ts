import type { z } from 'zod';
import {
  ARTIFACT_TOOLS,
  archiveArtifactsArgsSchema,
  listArtifactsArgsSchema,
  readArtifactArgsSchema,
  isArtifactTool,
} from '../../shared/calls/artifact-schemas.js';
import { clampTimeoutS, describeZodError, type ExecutionResult, type JobItem } from '../../shared/calls/schemas.js';
import { archiveArtifacts } from './artifact-archive.js';
import type { ArtifactContext } from './artifact-context.js';
import type { ArtifactIo } from './slot-access.js';
import { listArtifacts } from './artifact-list.js';
import { readArtifact } from './artifact-read.js';
import { failure } from './call-result.js';
import type { RunRequest, RunResult } from '../executor/session.js';


type Handler<S extends z.ZodType> = (ctx: ArtifactContext, args: z.output<S>) => Promise<ExecutionResult>;
const handler = <S extends z.ZodType>(schema: S, run: Handler<S>) => ({ schema, run });

/** The internal artifact tools (contract §5): each validates its arguments with zod, then runs in the slot. */
const HANDLERS = {
  [ARTIFACT_TOOLS.read]: handler(readArtifactArgsSchema, readArtifact),
  [ARTIFACT_TOOLS.list]: handler(listArtifactsArgsSchema, listArtifacts),
  [ARTIFACT_TOOLS.archive]: handler(archiveArtifactsArgsSchema, archiveArtifacts),
} as const;

/**
 * Runs one artifact call (artifact_read, artifact_list, artifact_archive) inside the slot's FIFO.
 * The result's `metadata.artifact` carries the payload the producer turns into the helper's result.
 */
export async function executeArtifactCall(run: (req: RunRequest) => Promise<RunResult>, io: ArtifactIo | undefined, item: JobItem): Promise<ExecutionResult> {
  if (!isArtifactTool(item.tool)) return failure(item, 'UNKNOWN_TOOL', `Unknown artifact tool: ${item.tool}`);
  const { schema, run: exec } = HANDLERS[item.tool] as { schema: z.ZodType<{ timeout?: number | undefined }>; run: Handler<z.ZodType> };
  const parsed = schema.safeParse(item.args);
  if (!parsed.success) return failure(item, 'INVALID_ARGS', `Invalid arguments for ${item.tool}: ${describeZodError(parsed.error)}`);
  if (!io) return failure(item, 'INTERNAL', `${item.tool} needs container access that this executor was not given`);
  const timeoutS = clampTimeoutS(parsed.data.timeout ?? item.timeoutS);
  const startedAtMs = Date.now();
  return exec({ item, run, io, timeoutS, startedAtMs, deadlineMs: startedAtMs + timeoutS * 1000 }, parsed.data);
}
