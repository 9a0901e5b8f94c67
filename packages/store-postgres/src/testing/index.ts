/**
 * `@sluice/store-postgres/testing`: run the store at a clock a test controls, so every refill
 * step, window end, lapse and due time is met at exactly the moment the reference math sees it.
 * For tests only: a table at a test clock decides at whatever time was set last.
 */
export { atTestClock, installTestClock, type TestClock, type TestClockOptions } from "./clock.js";
