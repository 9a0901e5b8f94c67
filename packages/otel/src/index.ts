export {
  instrumentSluice,
  type SluiceMetrics,
  type SluiceMetricsOptions,
} from "./instrument.js";
export { attributeNames, metricNames } from "./names.js";
export { type InstrumentStoreOptions, instrumentStore } from "./store.js";
