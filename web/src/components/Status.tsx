// Loading and error states, the same everywhere.

export function ErrorNote({ message, testId }: { message: string | null; testId?: string }) {
  if (!message) return null;
  return (
    <p className="error-note" role="alert" data-testid={testId ?? "error"}>
      {message}
    </p>
  );
}

export function Loading({ when, what }: { when: boolean; what: string }) {
  if (!when) return null;
  return (
    <p className="loading" role="status" aria-live="polite">
      Loading {what}…
    </p>
  );
}
