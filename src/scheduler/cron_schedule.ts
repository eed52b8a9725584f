/**
 * When a cron job runs next (convex-compat.md §4.2 schedules, all UTC): intervals, hourly, daily, weekly, monthly
 * and 5-field cron expressions (`minute hour day-of-month month day-of-week`, with `*`, lists, ranges, steps and
 * month/day names). The calendar schedules are cron expressions underneath.
 */

/** A schedule as `crons.js` exports it. */
export type CronSchedule =
  | { type: "interval"; seconds?: number; minutes?: number; hours?: number }
  | { type: "hourly"; minuteUTC?: number }
  | { type: "daily"; hourUTC: number; minuteUTC?: number }
  | { type: "weekly"; dayOfWeek: string; hourUTC: number; minuteUTC?: number }
  | { type: "monthly"; day: number; hourUTC: number; minuteUTC?: number }
  | { type: "cron"; cron: string };

/** The sets of values each cron field matches. */
interface CronFields {
  minutes: Set<number>;
  hours: Set<number>;
  daysOfMonth: Set<number>;
  months: Set<number>;
  daysOfWeek: Set<number>;
  /** Standard cron: when both day fields are restricted, a day matching either one matches. */
  dayOfMonthRestricted: boolean;
  dayOfWeekRestricted: boolean;
}

const MINUTE_MS = 60_000;
/** Steps of the next-match search; enough for any satisfiable expression within several years. */
const MAX_SEARCH_STEPS = 100_000;
const DAY_NAMES = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"];
const MONTH_NAMES = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];

/** A compiled schedule: the next run strictly after a time. */
export interface CompiledSchedule {
  /** The next run time in ms strictly after `afterMs`; `Infinity` when the schedule never matches again. */
  nextRunMs(afterMs: number): number;
}

/** Compiles a schedule; throws an Error naming the problem for malformed ones. */
export function compileSchedule(schedule: CronSchedule): CompiledSchedule {
  if (schedule.type === "interval") {
    const intervalMs = ((schedule.hours ?? 0) * 3600 + (schedule.minutes ?? 0) * 60 + (schedule.seconds ?? 0)) * 1000;
    if (!Number.isFinite(intervalMs) || intervalMs <= 0) throw new Error("interval must be positive");
    return { nextRunMs: (afterMs) => afterMs + intervalMs };
  }
  const fields = parseCron(cronExpressionOf(schedule));
  return { nextRunMs: (afterMs) => nextCronMatchMs(fields, afterMs) };
}

/** The calendar schedules as cron expressions. */
function cronExpressionOf(schedule: Exclude<CronSchedule, { type: "interval" }>): string {
  switch (schedule.type) {
    case "cron":
      return schedule.cron;
    case "hourly":
      return `${schedule.minuteUTC ?? 0} * * * *`;
    case "daily":
      return `${schedule.minuteUTC ?? 0} ${schedule.hourUTC} * * *`;
    case "weekly": {
      const day = DAY_NAMES.indexOf(String(schedule.dayOfWeek).toLowerCase());
      if (day === -1) throw new Error(`unknown day of week ${JSON.stringify(schedule.dayOfWeek)}`);
      return `${schedule.minuteUTC ?? 0} ${schedule.hourUTC} * * ${day}`;
    }
    case "monthly":
      return `${schedule.minuteUTC ?? 0} ${schedule.hourUTC} ${schedule.day} * *`;
    default:
      throw new Error(`unknown schedule type ${JSON.stringify((schedule as { type: unknown }).type)}`);
  }
}

/** Parses a 5-field cron expression. */
export function parseCron(expression: string): CronFields {
  const parts = expression.trim().split(/\s+/);
  if (parts.length !== 5) throw new Error(`cron expression "${expression}" must have 5 fields`);
  const [minute, hour, dayOfMonth, month, dayOfWeek] = parts;
  const daysOfWeek = parseField(dayOfWeek, 0, 7, DAY_NAMES.map((name) => name.slice(0, 3)), 0);
  if (daysOfWeek.has(7)) daysOfWeek.add(0); // 7 is Sunday too
  return {
    minutes: parseField(minute, 0, 59),
    hours: parseField(hour, 0, 23),
    daysOfMonth: parseField(dayOfMonth, 1, 31),
    months: parseField(month, 1, 12, MONTH_NAMES, 1),
    daysOfWeek,
    dayOfMonthRestricted: !isWildcard(dayOfMonth),
    dayOfWeekRestricted: !isWildcard(dayOfWeek),
  };
}

function isWildcard(field: string): boolean {
  return field === "*" || field === "?";
}

/** One field: `*`, `?`, `n`, `a-b`, any of those with `/step`, comma-separated; names where given. */
function parseField(field: string, min: number, max: number, names: string[] = [], firstNameValue = 0): Set<number> {
  const values = new Set<number>();
  const number = (text: string): number => {
    const named = names.indexOf(text.toLowerCase());
    if (named !== -1) return named + firstNameValue;
    if (!/^\d+$/.test(text)) throw new Error(`bad cron value "${text}"`);
    const value = Number(text);
    if (value < min || value > max) throw new Error(`cron value ${value} is outside ${min}-${max}`);
    return value;
  };
  for (const part of field.split(",")) {
    const [range, stepText] = part.split("/");
    const step = stepText === undefined ? 1 : Number(stepText);
    if (!Number.isInteger(step) || step < 1) throw new Error(`bad cron step in "${part}"`);
    let low: number;
    let high: number;
    if (isWildcard(range)) [low, high] = [min, max];
    else if (range.includes("-")) {
      const [from, to] = range.split("-");
      [low, high] = [number(from), number(to)];
    } else {
      low = number(range);
      high = stepText === undefined ? low : max;
    }
    if (low > high) throw new Error(`bad cron range "${range}"`);
    for (let value = low; value <= high; value += step) values.add(value);
  }
  return values;
}

function dayMatches(fields: CronFields, date: Date): boolean {
  const byMonth = fields.daysOfMonth.has(date.getUTCDate());
  const byWeek = fields.daysOfWeek.has(date.getUTCDay());
  if (fields.dayOfMonthRestricted && fields.dayOfWeekRestricted) return byMonth || byWeek;
  if (fields.dayOfMonthRestricted) return byMonth;
  if (fields.dayOfWeekRestricted) return byWeek;
  return true;
}

/** The first whole minute strictly after `afterMs` matching `fields`, skipping whole months, days and hours. */
function nextCronMatchMs(fields: CronFields, afterMs: number): number {
  let timeMs = Math.floor(afterMs / MINUTE_MS) * MINUTE_MS + MINUTE_MS;
  for (let step = 0; step < MAX_SEARCH_STEPS; step++) {
    const date = new Date(timeMs);
    const [year, month, day, hour] = [date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate(), date.getUTCHours()];
    if (!fields.months.has(month + 1)) timeMs = Date.UTC(year, month + 1, 1);
    else if (!dayMatches(fields, date)) timeMs = Date.UTC(year, month, day + 1);
    else if (!fields.hours.has(hour)) timeMs = Date.UTC(year, month, day, hour + 1);
    else if (!fields.minutes.has(date.getUTCMinutes())) timeMs += MINUTE_MS;
    else return timeMs;
  }
  return Infinity;
}
