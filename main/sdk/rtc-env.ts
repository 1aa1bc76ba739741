/**
 * Imported (for its side effect) before @livekit/rtc-node: rtc-node logs at debug level to stdout
 * unless NODE_ENV is `production`, and a handler's stdout is the worker's log.
 */
process.env['NODE_ENV'] ??= 'production';
export {};
