/** The HTTP status of an engine error (dockerode puts it on the error as statusCode). */
export const statusOf = (err: unknown): number | undefined => (err as { statusCode?: number } | null)?.statusCode;
