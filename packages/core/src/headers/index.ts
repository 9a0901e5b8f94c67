export {
  type ParsedRateLimitHeaders,
  type ParseRateLimitHeadersOptions,
  parseRateLimitHeaders,
  parseRateLimitHeadersDetailed,
  type RateLimitHeaderInput,
  type RateLimitHeaderIssue,
} from "./parse.js";
export { type RateLimitHeadersOptions, type RateLimitStandard, rateLimitHeaders } from "./write.js";
