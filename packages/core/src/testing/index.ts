/**
 * `@sluice/core/testing`: the conformance suite every store runs, and the comparison harness its
 * differential tests call. It registers vitest tests (vitest and fast-check are optional peer
 * dependencies of @sluice/core).
 */
export {
  BoundModel,
  ConformanceContext,
  type ConformanceGroup,
} from "./conformance/context.js";
export {
  CONFORMANCE_GROUPS,
  type StoreConformanceOptions,
  storeConformanceSuite,
} from "./conformance/suite.js";
export { nextOffsetChange } from "./dst.js";
export { expectReportsOfAnySizeBounded, extremeScenarioArb } from "./extremes.js";
export {
  ReferenceModel,
  RequestFactory,
  type RequestFactoryOptions,
  type RequestParts,
  realTime,
  type TimeDriver,
  type WindowBoundsFn,
} from "./model.js";
export {
  type CompareOptions,
  compareWithReference,
  jumpNearOffsetChange,
  type RunScenarioOptions,
  runScenario,
  uniquePrefix,
} from "./run.js";
export {
  type Command,
  type ObservationSpec,
  type Scenario,
  type ScenarioOptions,
  scenarioArb,
} from "./scenario.js";
