/**
 * Imported (for its side effect) before @livekit/rtc-node: rtc-node logs at debug level to stdout
 * unless NODE_ENV is `production`, which would bury the test output under connection chatter.
 */
process.env['NODE_ENV'] ??= 'production';
export {};
