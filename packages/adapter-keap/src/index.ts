export {
  classify429,
  type Keap429,
  type KeapMessageRate,
  type KeapThrottleCause,
  parseMessageRate,
} from "./causes.js";
export {
  createKeapClient,
  type KeapClient,
  type KeapClientEventName,
  type KeapClientEvents,
  type KeapClientOptions,
  type KeapClientProfile,
  type KeapClientStats,
  type KeapFetchFunction,
  type KeapIdentity,
} from "./client.js";
export { KeapQuotaExhaustedError } from "./errors.js";
export {
  type KeapHeaderIssue,
  type KeapHeadersInput,
  type KeapHeadersResult,
  type ParseKeapHeadersOptions,
  parseKeapHeaders,
  parseKeapHeadersDetailed,
} from "./headers.js";
export {
  type KeapProfile,
  type KeapProfileName,
  keapPartitions,
  keapPolicies,
  keapProfiles,
  SPIKE_MARGIN,
  spikeSpacingMs,
} from "./profiles.js";
