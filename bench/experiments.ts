/**
 * Every experiment that writes a report, for what reads them all (the report tests, the glance).
 * A new experiment is its folder under bench/, a Makefile target, and one entry here.
 */

import type { Renderer } from './kit/experiment.js';
import type { ReportFile } from './kit/report-file.js';
import { backlog } from './backlog/main.js';
import { balance } from './balance/main.js';
import { bench } from './servers/main.js';
import { chat } from './chat/main.js';
import { files } from './files/main.js';
import { hardening } from './harden/main.js';
import { limits } from './limits/main.js';
import { nagle } from './nagle/main.js';
import { soak } from './soak/main.js';
import { syscalls } from './syscalls/main.js';

export const EXPERIMENTS = [backlog, balance, bench, chat, files, hardening, limits, nagle, soak, syscalls] as unknown as readonly Renderer<ReportFile<string, number>>[];
