/** The scenarios, in the order they run and appear in the report. */

import type { Scenario } from '../run.js';
import { capacityScenario } from './capacity.js';
import { churnScenario } from './churn.js';
import { echoScenario } from './echo.js';
import { idleScenario } from './idle.js';
import { cpuScenario, httpScenario } from './http.js';

export const SCENARIOS: readonly Scenario[] = [echoScenario, idleScenario, httpScenario, cpuScenario, churnScenario, capacityScenario];
