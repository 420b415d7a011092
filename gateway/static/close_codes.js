// The gateway's websocket close codes, by the names gateway/frames.py gives them
// (docs/gateway.md). tests/test_viewer_close_codes.py checks the two agree.
export const CLOSE = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001,
  INTERNAL: 1011,
  UNKNOWN_RUN: 4004,
  BAD_QUERY: 4400,
  LAGGING: 4008,
});
