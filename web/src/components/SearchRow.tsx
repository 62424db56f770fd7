import type { ReactNode } from "react";

/** The query box every view opens with: a labelled input, its submit button, and
 *  whatever else the view puts beside them (the Live button, a datalist). */
export function SearchRow(props: {
  label: string;
  placeholder: string;
  value: string;
  onChange: (value: string) => void;
  submit: string;
  list?: string;
  children?: ReactNode;
}) {
  return (
    <div className="search-row">
      <label className="grow">
        <span className="sr-only">{props.label}</span>
        <input
          data-search
          aria-label={props.label}
          className="query-input"
          list={props.list}
          placeholder={props.placeholder}
          value={props.value}
          onChange={(e) => props.onChange(e.target.value)}
        />
      </label>
      <button type="submit">{props.submit}</button>
      {props.children}
    </div>
  );
}
