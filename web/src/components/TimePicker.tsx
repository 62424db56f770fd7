// Relative presets and absolute from/to, as text the API understands (`now-1h`, RFC 3339).

import { fromLocalInput, parseTime, toLocalInput, toRfc3339, type TimeRange } from "../time";

const PRESETS = ["5m", "15m", "1h", "6h", "24h", "7d"];

interface Props {
  value: TimeRange;
  /** `commit`: the choice is complete (a preset), run it now. */
  onChange: (range: TimeRange, commit?: boolean) => void;
}

export function TimePicker({ value, onChange }: Props) {
  const preset = value.to === "now" && PRESETS.find((p) => value.from === `now-${p}`);
  const now = Date.now();
  const fromMs = parseTime(value.from, now);
  const toMs = parseTime(value.to, now);
  return (
    <fieldset className="time-picker">
      <legend className="sr-only">Time range</legend>
      <label>
        <span>Range</span>
        <select
          aria-label="Relative time range"
          value={preset || "custom"}
          onChange={(e) => {
            if (e.target.value !== "custom") onChange({ from: `now-${e.target.value}`, to: "now" }, true);
            else if (fromMs !== null && toMs !== null) onChange({ from: toRfc3339(fromMs), to: toRfc3339(toMs) });
          }}
        >
          {PRESETS.map((p) => (
            <option key={p} value={p}>
              last {p}
            </option>
          ))}
          <option value="custom">absolute…</option>
        </select>
      </label>
      <label>
        <span>From</span>
        <input
          aria-label="From"
          className="time-text"
          value={value.from}
          onChange={(e) => onChange({ ...value, from: e.target.value })}
          placeholder="now-1h"
        />
      </label>
      <label>
        <span>To</span>
        <input
          aria-label="To"
          className="time-text"
          value={value.to}
          onChange={(e) => onChange({ ...value, to: e.target.value })}
          placeholder="now"
        />
      </label>
      {!preset && (
        <>
          <label>
            <span>Start (local)</span>
            <input
              type="datetime-local"
              step="1"
              aria-label="Start, local time"
              value={fromMs === null ? "" : toLocalInput(fromMs)}
              onChange={(e) => {
                const ms = fromLocalInput(e.target.value);
                if (ms !== null) onChange({ ...value, from: toRfc3339(ms) });
              }}
            />
          </label>
          <label>
            <span>End (local)</span>
            <input
              type="datetime-local"
              step="1"
              aria-label="End, local time"
              value={toMs === null ? "" : toLocalInput(toMs)}
              onChange={(e) => {
                const ms = fromLocalInput(e.target.value);
                if (ms !== null) onChange({ ...value, to: toRfc3339(ms) });
              }}
            />
          </label>
        </>
      )}
    </fieldset>
  );
}
