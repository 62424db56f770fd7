//! Bounds on the memory of SQL queries where DataFusion's memory pool does not reach.
//!
//! The pool counts what sorts, joins and aggregates hold. It does not count what a scalar
//! function builds, and forty characters of SQL could ask one for gigabytes:
//! `SELECT array_repeat(1, 1000000000)` allocated 8 GB in one call and `porthole serve`,
//! ingest included, was killed for it. Nor does it count the rows a window function
//! without bounds buffers (`sum(x) OVER ()` holds every row of its input, twice).
//!
//! So, per query:
//! - the functions whose output can be much larger than their input (`repeat`, `lpad`,
//!   `rpad`, `replace`, `regexp_replace`, `array_repeat`, `range`, `generate_series`,
//!   `array_resize`, and their aliases) are replaced with [`Growing`] wrappers. A wrapper
//!   works out, before it calls the function, an upper bound of what each row will build,
//!   calls it on slices of rows that bound keeps small, and stops the query once one call
//!   has built more than [`MAX_BUILT_BYTES`] (or one row alone would). A query may make
//!   at most [`MAX_GROWING_CALLS`] such calls, so what they build at once stays bounded.
//! - the input of every unbounded window is reserved from the query's memory pool as it
//!   arrives ([`account_windows`]), so a window over more rows than the pool holds is
//!   refused like a sort that is too large.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{
    DataType, Date32Type, Date64Type, Int64Type, IntervalMonthDayNanoType, TimeUnit,
};
use deltalake::datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use deltalake::datafusion::common::{DataFusionError, Result, ScalarValue};
use deltalake::datafusion::execution::memory_pool::MemoryConsumer;
use deltalake::datafusion::execution::{FunctionRegistry, TaskContext};
use deltalake::datafusion::logical_expr::{
    ColumnarValue, Documentation, Expr, LogicalPlan, ReturnFieldArgs, ScalarFunctionArgs,
    ScalarUDF, ScalarUDFImpl, Signature,
};
use deltalake::datafusion::physical_plan::execution_plan::ReplaceChildrenOptions;
use deltalake::datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use deltalake::datafusion::physical_plan::windows::WindowAggExec;
use deltalake::datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, PhysicalExpr,
    PlanProperties, SendableRecordBatchStream,
};
use deltalake::datafusion::prelude::SessionContext;
use futures::StreamExt;

/// What one call of a growing function may build (the bytes of its result).
pub const MAX_BUILT_BYTES: usize = 64 * 1024 * 1024;
/// Calls of growing functions one query may make.
pub const MAX_GROWING_CALLS: usize = 8;
/// The rows of one call are passed to the function in slices whose bound is about this.
const SLICE_BYTES: u64 = 4 * 1024 * 1024;
const NANOS_PER_DAY: i128 = 86_400_000_000_000;

/// How a function's output grows with its arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Growth {
    /// `repeat(text, n)`: the text n times.
    Repeat,
    /// `lpad(text, n [, fill])`, `rpad`: n characters, each at most 4 bytes.
    Pad,
    /// `replace(text, from, to)`: at most one `to` for each `from` (or each character
    /// when `from` is empty).
    Replace,
    /// `regexp_replace(text, pattern, replacement [, flags])`: at most one replacement at
    /// each position, and each `$group` in it at most the whole text over all matches.
    RegexpReplace,
    /// `array_repeat(value, n)`: n copies of the value.
    ArrayRepeat,
    /// `range(…)` and `generate_series(…)`: one element per step.
    Range,
    /// `array_resize(list, n [, value])`: n elements.
    ArrayResize,
}

const GROWING: [(&str, Growth); 9] = [
    ("repeat", Growth::Repeat),
    ("lpad", Growth::Pad),
    ("rpad", Growth::Pad),
    ("replace", Growth::Replace),
    ("regexp_replace", Growth::RegexpReplace),
    ("array_repeat", Growth::ArrayRepeat),
    ("range", Growth::Range),
    ("generate_series", Growth::Range),
    ("array_resize", Growth::ArrayResize),
];

/// Replaces the growing functions of `ctx` (under their names and aliases) with wrappers
/// that bound what they build.
pub fn bound_functions(ctx: &SessionContext) {
    for (name, growth) in GROWING {
        if let Ok(inner) = ctx.udf(name) {
            ctx.register_udf(ScalarUDF::new_from_impl(Growing { inner, growth }));
        }
    }
}

/// Refuses a plan that calls growing functions more than [`MAX_GROWING_CALLS`] times.
pub fn check_growing_calls(plan: &LogicalPlan) -> Result<()> {
    let mut calls: Vec<String> = Vec::new();
    plan.apply_with_subqueries(|node| {
        node.apply_expressions(|expr| {
            expr.apply(|e| {
                if let Expr::ScalarFunction(call) = e
                    && call.func.inner().as_ref().is::<Growing>()
                {
                    calls.push(call.func.name().to_string());
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    })?;
    if calls.len() > MAX_GROWING_CALLS {
        return Err(DataFusionError::Plan(format!(
            "the query calls functions that build long values {} times ({}); at most \
             {MAX_GROWING_CALLS} are allowed in one query",
            calls.len(),
            calls.join(", ")
        )));
    }
    Ok(())
}

/// A growing function, bounded.
#[derive(Debug)]
struct Growing {
    inner: Arc<ScalarUDF>,
    growth: Growth,
}

impl PartialEq for Growing {
    fn eq(&self, other: &Self) -> bool {
        self.growth == other.growth && self.inner == other.inner
    }
}

impl Eq for Growing {}

impl Hash for Growing {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.growth.hash(state);
        self.inner.hash(state);
    }
}

fn too_large(name: &str, what: String) -> DataFusionError {
    DataFusionError::Execution(format!(
        "{name} would build {what}; one call may build at most {} MiB (the bytes of its \
         result for one batch of rows): ask for shorter values, or fewer rows at once",
        MAX_BUILT_BYTES >> 20
    ))
}

impl Growing {
    /// An upper bound of the bytes each row's result takes (one entry when every argument
    /// is a single value).
    fn estimate(&self, args: &[ColumnarValue], rows: usize) -> Result<Vec<u64>> {
        let rows = rows_to_estimate(args, rows);
        let arg = |i: usize| Values::of(args.get(i), rows);
        // Each row's value bytes, `times` over: what n copies of it take.
        let copies = |bytes: Vec<u64>, times: Vec<Option<i64>>| -> Vec<u64> {
            bytes
                .into_iter()
                .zip(times)
                .map(|(b, n)| b.saturating_mul(count(n)))
                .collect()
        };
        Ok(match self.growth {
            Growth::Repeat => copies(arg(0)?.lengths()?, arg(1)?.ints()?),
            // n characters of at most 4 bytes each.
            Growth::Pad => copies(vec![4; rows], arg(1)?.ints()?),
            Growth::Replace | Growth::RegexpReplace => {
                let (text, pattern, to) = (arg(0)?.lengths()?, arg(1)?.lengths()?, arg(2)?);
                let regexp = self.growth == Growth::RegexpReplace;
                let groups = if regexp { to.dollars()? } else { vec![0; rows] };
                let to = to.lengths()?;
                (0..rows)
                    .map(|row| {
                        let text = text[row];
                        let places = if regexp {
                            text + 1
                        } else {
                            (text + 1) / pattern[row].max(1)
                        };
                        text.saturating_add(places.saturating_mul(to[row]))
                            .saturating_add(groups[row].saturating_mul(text))
                    })
                    .collect()
            }
            Growth::ArrayRepeat => copies(arg(0)?.element_bytes()?, arg(1)?.ints()?),
            Growth::Range => copies(vec![8; rows], range_steps(args, rows)?),
            Growth::ArrayResize => {
                let child = match args.first().map(|list| list.data_type()) {
                    Some(DataType::List(f) | DataType::LargeList(f)) => {
                        f.data_type().primitive_width()
                    }
                    _ => None,
                };
                let element = match (child, args.get(2)) {
                    (Some(width), _) => vec![width as u64; rows],
                    (None, Some(_)) => arg(2)?.element_bytes()?,
                    (None, None) => vec![16; rows],
                };
                copies(element, arg(1)?.ints()?)
            }
        })
    }
}

/// Rows an estimate has: one when every argument is a single value (the function then
/// builds one value, however many rows the batch has).
fn rows_to_estimate(args: &[ColumnarValue], rows: usize) -> usize {
    if args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_))) {
        1
    } else {
        rows
    }
}

/// A count argument as a number of copies (none for null or below zero).
fn count(n: Option<i64>) -> u64 {
    n.map_or(0, |n| n.max(0) as u64)
}

/// Elements of each row's `range`/`generate_series`: `(stop)`, `(start, stop)` or
/// `(start, stop, step)` over integers, dates or timestamps (an interval step is taken at
/// its shortest: a month as 28 days).
fn range_steps(args: &[ColumnarValue], rows: usize) -> Result<Vec<Option<i64>>> {
    let values = |i: usize| Values::of(args.get(i), rows);
    let (start, stop) = match args.len() {
        1 => (vec![Some(0); rows], values(0)?.instants()?),
        _ => (values(0)?.instants()?, values(1)?.instants()?),
    };
    let step = match args.get(2) {
        Some(_) => values(2)?.step_nanos()?,
        None => vec![Some(1); rows],
    };
    Ok((0..rows)
        .map(|row| match (start[row], stop[row], step[row]) {
            (Some(a), Some(b), Some(s)) => {
                let steps = (b - a).unsigned_abs() / s.unsigned_abs().max(1) + 1;
                Some(i64::try_from(steps).unwrap_or(i64::MAX))
            }
            _ => None,
        })
        .collect())
}

/// One argument of a call, row by row.
struct Values {
    array: Option<ArrayRef>,
    scalar: bool,
    rows: usize,
}

impl Values {
    fn of(arg: Option<&ColumnarValue>, rows: usize) -> Result<Self> {
        Ok(match arg {
            None => Self {
                array: None,
                scalar: true,
                rows,
            },
            Some(ColumnarValue::Scalar(value)) => Self {
                array: Some(value.to_array_of_size(1)?),
                scalar: true,
                rows,
            },
            Some(ColumnarValue::Array(array)) => Self {
                array: Some(array.clone()),
                scalar: false,
                rows,
            },
        })
    }

    /// Other values of this argument (cast or measured), row for row.
    fn same_rows(&self, array: ArrayRef) -> Self {
        Self {
            array: Some(array),
            scalar: self.scalar,
            rows: self.rows,
        }
    }

    /// Each row's value from `at(array, index)`, None where the argument is missing or
    /// null.
    fn each<T: Clone>(&self, at: impl Fn(&ArrayRef, usize) -> T) -> Vec<Option<T>> {
        let Some(array) = &self.array else {
            return vec![None; self.rows];
        };
        if self.scalar {
            let one = array.is_valid(0).then(|| at(array, 0));
            return vec![one; self.rows];
        }
        (0..self.rows)
            .map(|i| array.is_valid(i).then(|| at(array, i)))
            .collect()
    }

    /// Byte lengths of a text or binary argument (0 where null).
    fn lengths(&self) -> Result<Vec<u64>> {
        let Some(array) = &self.array else {
            return Ok(vec![0; self.rows]);
        };
        let lengths = arrow::compute::kernels::length::length(array)?;
        let lengths = arrow::compute::cast(&lengths, &DataType::Int64)?;
        let values = self.same_rows(lengths);
        Ok(values
            .each(|a, i| a.as_primitive::<Int64Type>().value(i))
            .into_iter()
            .map(count)
            .collect())
    }

    /// An integer argument.
    fn ints(&self) -> Result<Vec<Option<i64>>> {
        let Some(array) = &self.array else {
            return Ok(vec![None; self.rows]);
        };
        let ints = arrow::compute::cast(array, &DataType::Int64)?;
        let values = self.same_rows(ints);
        Ok(values.each(|a, i| a.as_primitive::<Int64Type>().value(i)))
    }

    /// An integer, date or timestamp argument as a count of steps, at nanoseconds for times.
    fn instants(&self) -> Result<Vec<Option<i128>>> {
        let Some(array) = &self.array else {
            return Ok(vec![None; self.rows]);
        };
        let nanos_per = |unit: &TimeUnit| match unit {
            TimeUnit::Second => 1_000_000_000i128,
            TimeUnit::Millisecond => 1_000_000,
            TimeUnit::Microsecond => 1_000,
            TimeUnit::Nanosecond => 1,
        };
        Ok(match array.data_type() {
            DataType::Date32 => {
                self.each(|a, i| a.as_primitive::<Date32Type>().value(i) as i128 * NANOS_PER_DAY)
            }
            DataType::Date64 => {
                self.each(|a, i| a.as_primitive::<Date64Type>().value(i) as i128 * 1_000_000)
            }
            DataType::Timestamp(unit, _) => {
                let per = nanos_per(unit);
                let raw = arrow::compute::cast(array, &DataType::Int64)?;
                let values = self.same_rows(raw);
                values.each(|a, i| a.as_primitive::<Int64Type>().value(i) as i128 * per)
            }
            _ => self
                .ints()?
                .into_iter()
                .map(|v| v.map(i128::from))
                .collect(),
        })
    }

    /// A step: an interval at its shortest, in nanoseconds, or else as [`Self::instants`].
    fn step_nanos(&self) -> Result<Vec<Option<i128>>> {
        let Some(array) = &self.array else {
            return Ok(vec![None; self.rows]);
        };
        Ok(match array.data_type() {
            DataType::Interval(_) => {
                let interval = arrow::compute::cast(
                    array,
                    &DataType::Interval(arrow::datatypes::IntervalUnit::MonthDayNano),
                )?;
                let values = self.same_rows(interval);
                values.each(|a, i| {
                    let v = a.as_primitive::<IntervalMonthDayNanoType>().value(i);
                    v.months as i128 * 28 * NANOS_PER_DAY
                        + v.days as i128 * NANOS_PER_DAY
                        + v.nanoseconds as i128
                })
            }
            _ => self.instants()?,
        })
    }

    /// `$` signs in a replacement (each may name a group).
    fn dollars(&self) -> Result<Vec<u64>> {
        let Some(array) = &self.array else {
            return Ok(vec![0; self.rows]);
        };
        let text = arrow::compute::cast(array, &DataType::Utf8)?;
        let values = self.same_rows(text);
        Ok(values
            .each(|a, i| a.as_string::<i32>().value(i).matches('$').count() as u64)
            .into_iter()
            .map(|n| n.unwrap_or(0))
            .collect())
    }

    /// Bytes one copy of each row's value takes in a list.
    fn element_bytes(&self) -> Result<Vec<u64>> {
        let Some(array) = &self.array else {
            return Ok(vec![0; self.rows]);
        };
        if let Some(width) = array.data_type().primitive_width() {
            return Ok(vec![width as u64; self.rows]);
        }
        if matches!(
            array.data_type(),
            DataType::Utf8
                | DataType::LargeUtf8
                | DataType::Utf8View
                | DataType::Binary
                | DataType::LargeBinary
                | DataType::BinaryView
        ) {
            return Ok(self.lengths()?.into_iter().map(|n| n + 16).collect());
        }
        let sizes = self
            .each(|a, i| ScalarValue::try_from_array(a, i).map_or(u64::MAX, |v| v.size() as u64));
        Ok(sizes.into_iter().map(|s| s.unwrap_or(16)).collect())
    }
}

fn slice(arg: &ColumnarValue, offset: usize, len: usize) -> ColumnarValue {
    match arg {
        ColumnarValue::Array(array) => ColumnarValue::Array(array.slice(offset, len)),
        scalar => scalar.clone(),
    }
}

fn built_bytes(value: &ColumnarValue) -> usize {
    match value {
        ColumnarValue::Array(array) => array.get_array_memory_size(),
        ColumnarValue::Scalar(value) => value.size(),
    }
}

impl ScalarUDFImpl for Growing {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<arrow::datatypes::FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let name = self.inner.name();
        let bounds = self.estimate(&args.args, args.number_rows)?;
        if let Some(row) = bounds.iter().position(|&b| b > MAX_BUILT_BYTES as u64) {
            return Err(too_large(
                name,
                format!("up to {} MiB for one row", bounds[row] >> 20),
            ));
        }
        let checked = |built: usize| {
            if built > MAX_BUILT_BYTES {
                Err(too_large(name, format!("{} MiB", built >> 20)))
            } else {
                Ok(())
            }
        };
        let total: u64 = bounds.iter().fold(0, |sum, b| sum.saturating_add(*b));
        if bounds.len() <= 1 || total <= SLICE_BYTES {
            let result = self.inner.invoke_with_args(args)?;
            checked(built_bytes(&result))?;
            return Ok(result);
        }
        let rows = args.number_rows;
        let (mut parts, mut built, mut start) = (Vec::new(), 0usize, 0usize);
        while start < rows {
            let (mut end, mut bytes) = (start, 0u64);
            while end < rows && (end == start || bytes + bounds[end] <= SLICE_BYTES) {
                bytes += bounds[end];
                end += 1;
            }
            let part = ScalarFunctionArgs {
                args: args
                    .args
                    .iter()
                    .map(|a| slice(a, start, end - start))
                    .collect(),
                arg_fields: args.arg_fields.clone(),
                number_rows: end - start,
                return_field: args.return_field.clone(),
                config_options: args.config_options.clone(),
            };
            let result = self.inner.invoke_with_args(part)?.into_array(end - start)?;
            built += result.get_array_memory_size();
            checked(built)?;
            parts.push(result);
            start = end;
        }
        let parts: Vec<&dyn Array> = parts.iter().map(|p| p.as_ref()).collect();
        Ok(ColumnarValue::Array(arrow::compute::concat(&parts)?))
    }
}

/// Reserves the input of every unbounded window of `plan` from the query's memory pool.
pub fn account_windows(plan: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        if !node.as_ref().is::<WindowAggExec>() {
            return Ok(Transformed::no(node));
        }
        let inputs: Vec<Arc<dyn ExecutionPlan>> = node
            .children()
            .into_iter()
            .map(|input| Arc::new(Reserved::new(input.clone())) as Arc<dyn ExecutionPlan>)
            .collect();
        let node = node.replace_children(
            inputs,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Keep),
        )?;
        Ok(Transformed::yes(node))
    })
    .map(|t| t.data)
}

/// Passes its input through, reserving twice the bytes of every batch from the memory
/// pool until the stream ends: what a window that buffers its whole input (and then
/// concatenates it) holds.
#[derive(Debug, Clone)]
struct Reserved {
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
}

impl Reserved {
    fn new(input: Arc<dyn ExecutionPlan>) -> Self {
        let properties = input.properties().clone();
        Self { input, properties }
    }
}

impl DisplayAs for Reserved {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "ReservedForWindow")
    }
}

impl ExecutionPlan for Reserved {
    fn name(&self) -> &str {
        "ReservedForWindow"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return Err(DataFusionError::Internal(
                "ReservedForWindow takes one input".into(),
            ));
        }
        Ok(Arc::new(Self::new(children.swap_remove(0))))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let reservation = MemoryConsumer::new(format!("WindowAggExec input[{partition}]"))
            .register(context.memory_pool());
        let input = self.input.execute(partition, context)?;
        let schema = input.schema();
        let reserved = input.map(move |batch| {
            let batch = batch?;
            reservation.try_grow(2 * batch.get_array_memory_size())?;
            Ok(batch)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, reserved)))
    }
}
