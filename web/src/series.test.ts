import { describe, expect, it } from "vitest";
import { alignSeries } from "./series";

describe("alignSeries", () => {
  it("puts every series on the union of timestamps with gaps as null", () => {
    expect(
      alignSeries([
        { metric: { region: "eu" }, values: [[10, "1"], [20, "2"]] },
        { metric: { region: "us" }, values: [[20, "5"], [30, "NaN"]] },
      ]),
    ).toEqual([
      [10, 20, 30],
      [1, 2, null],
      [null, 5, Number.NaN],
    ]);
  });

  it("gives an empty time axis for no series", () => {
    expect(alignSeries([])).toEqual([[]]);
  });
});
