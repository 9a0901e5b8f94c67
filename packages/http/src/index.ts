export type { Charge } from "./charge.js";
export { clientKey } from "./client-key.js";
export type { LimitedInfo, LimiterLike, RateLimitOptionsBase } from "./options.js";
export { limitedProblem, outageProblem, PROBLEM_TYPE } from "./problem.js";
