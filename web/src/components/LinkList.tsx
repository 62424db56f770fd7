// A page's "pick one" list: what it could show, as links separated by dots.

import { linkClick } from "../router";

export function LinkList({
  testId,
  linkTestId,
  label,
  empty,
  links,
  more,
}: {
  testId: string;
  linkTestId: string;
  /** Before the links, e.g. "Metrics stored: ". */
  label: string;
  /** Shown instead when there are no links. */
  empty: string;
  links: { text: string; href: string }[];
  /** After the links, when some were left out. */
  more?: string;
}) {
  return (
    <div data-testid={testId}>
      {links.length === 0 ? (
        <p className="empty">{empty}</p>
      ) : (
        <p>
          <span className="hint">{label}</span>
          {links.map((link, i) => (
            <span key={link.text}>
              {i > 0 && " · "}
              <a href={link.href} onClick={linkClick} data-testid={linkTestId}>
                {link.text}
              </a>
            </span>
          ))}
          {more && <span className="hint"> · {more}</span>}
        </p>
      )}
    </div>
  );
}
