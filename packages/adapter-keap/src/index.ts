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
  type KeapProfileName,
  keapPartitions,
  keapPolicies,
  keapProfiles,
  SPIKE_MARGIN,
  spikeSpacingMs,
} from "./profiles.js";
