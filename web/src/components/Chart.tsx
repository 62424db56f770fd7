// A uPlot chart that follows its container's width and is rebuilt when its options change.

import { useEffect, useRef } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { withTimeAxis } from "../timeAxis";

interface Props {
  options: Omit<uPlot.Options, "width">;
  data: uPlot.AlignedData;
  label: string;
  /** Called with a dragged x range (in the chart's x units). */
  onSelectX?: (min: number, max: number) => void;
}

export function Chart({ options, data, label, onSelectX }: Props) {
  const container = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const onSelect = useRef(onSelectX);
  onSelect.current = onSelectX;

  useEffect(() => {
    const element = container.current;
    if (!element) return;
    const opts: uPlot.Options = {
      ...withTimeAxis(options),
      width: Math.max(element.clientWidth, 200),
      hooks: {
        ...options.hooks,
        setSelect: [
          (u) => {
            if (!onSelect.current || u.select.width < 2) return;
            const min = u.posToVal(u.select.left, "x");
            const max = u.posToVal(u.select.left + u.select.width, "x");
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
            onSelect.current(min, max);
          },
        ],
      },
    };
    const chart = new uPlot(opts, data, element);
    plot.current = chart;
    const resize = new ResizeObserver(() => {
      chart.setSize({ width: Math.max(element.clientWidth, 200), height: options.height });
    });
    resize.observe(element);
    return () => {
      resize.disconnect();
      chart.destroy();
      plot.current = null;
    };
  }, [options, data]);

  return <div className="chart" ref={container} role="img" aria-label={label} />;
}
