//! Filter chains: parsing (`emboss,gaussian_blur=2`), canonical printing, mode rules
//! and application with ping-pong scratch buffers.

use crate::geometry::{self, Transpose};
use crate::kernel::{self, Kernel};
use crate::resample::{self, Method};
use crate::{ChainError, FilterError, ImageBuf, ImageRef, Mode, blur, color, rank};
use std::fmt;

/// How a parameter gets its value when it is not given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParamDefault {
    /// The parameter must be given.
    Required,
    /// This literal value is used.
    Value(&'static str),
    /// A value computed from the other parameters or the image, described here.
    Computed(&'static str),
}

/// One parameter of a filter, for `frameflow filters`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamInfo {
    /// Name, usable as `name=value`.
    pub(crate) name: &'static str,
    /// Default value or rule.
    pub(crate) default: ParamDefault,
    /// One-line help.
    pub(crate) help: &'static str,
}

impl ParamInfo {
    /// Name, usable as `name=value`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Default value or rule.
    pub fn default(&self) -> ParamDefault {
        self.default
    }

    /// One-line help.
    pub fn help(&self) -> &'static str {
        self.help
    }

    /// The default as text (`None` when the parameter is required).
    pub fn default_text(&self) -> Option<&'static str> {
        match self.default {
            ParamDefault::Required => None,
            ParamDefault::Value(v) | ParamDefault::Computed(v) => Some(v),
        }
    }
}

/// Description of one filter, for `frameflow filters`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterInfo {
    /// Name used in chains.
    pub(crate) name: &'static str,
    /// Parameters in positional order.
    pub(crate) params: &'static [ParamInfo],
    /// The Pillow call whose output this filter reproduces.
    pub(crate) pillow: &'static str,
    /// One-line description.
    pub(crate) help: &'static str,
}

impl FilterInfo {
    /// Name used in chains.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Parameters in positional order.
    pub fn params(&self) -> &'static [ParamInfo] {
        self.params
    }

    /// The Pillow call whose output this filter reproduces.
    pub fn pillow(&self) -> &'static str {
        self.pillow
    }

    /// One-line description.
    pub fn help(&self) -> &'static str {
        self.help
    }
}

/// Resolved arguments of one step: given values or literal defaults, by parameter index.
struct Args<'s> {
    filter: &'static str,
    params: &'static [ParamInfo],
    values: Vec<Option<&'s str>>,
}

impl<'s> Args<'s> {
    /// The value of parameter `i` (given or literal default); `None` if absent with a
    /// computed default.
    fn get(&self, i: usize) -> Option<&'s str> {
        self.values[i].or(match self.params[i].default {
            ParamDefault::Value(v) => Some(v),
            _ => None,
        })
    }

    fn invalid(&self, i: usize, expected: impl Into<String>, got: &str) -> ChainError {
        ChainError::InvalidValue {
            filter: self.filter,
            param: self.params[i].name,
            expected: expected.into(),
            got: got.to_string(),
        }
    }

    /// Parameter `i` as a number in `lo..=hi` (required or literal default).
    fn real(&self, i: usize, lo: f64, hi: f64) -> Result<f64, ChainError> {
        let s = self.get(i).unwrap_or_default();
        let v = self.number(i)?.unwrap_or(f64::NAN);
        if v < lo {
            Err(self.invalid(i, format!(">= {lo}"), s))
        } else if v > hi {
            Err(self.invalid(i, format!("<= {hi}"), s))
        } else if v.is_nan() {
            Err(self.invalid(i, "a number", s))
        } else {
            Ok(v)
        }
    }

    /// Parameter `i` as an integer in `lo..=hi` (required or literal default).
    fn int(&self, i: usize, lo: i64, hi: i64) -> Result<i64, ChainError> {
        let s = self.get(i).unwrap_or_default();
        let v: i64 = s.parse().map_err(|_| self.invalid(i, "an integer", s))?;
        if v < lo {
            Err(self.invalid(i, format!(">= {lo}"), s))
        } else if v > hi {
            Err(self.invalid(i, format!("<= {hi}"), s))
        } else {
            Ok(v)
        }
    }

    /// Parameter `i` as a finite number.
    fn number(&self, i: usize) -> Result<Option<f64>, ChainError> {
        let Some(s) = self.get(i) else {
            return Ok(None);
        };
        match s.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(Some(v)),
            _ => Err(self.invalid(i, "a number", s)),
        }
    }
}

const fn p(name: &'static str, default: ParamDefault, help: &'static str) -> ParamInfo {
    ParamInfo {
        name,
        default,
        help,
    }
}

use ParamDefault::{Computed, Required, Value};

/// A filter definition: description plus builder.
struct FilterDef {
    info: fn() -> FilterInfo,
    build: fn(&Args<'_>) -> Result<Step, ChainError>,
}

macro_rules! builtin_kernel {
    ($name:literal, $pillow:literal, $help:literal) => {
        FilterDef {
            info: || FilterInfo {
                name: $name,
                params: &[],
                pillow: concat!("ImageFilter.", $pillow),
                help: $help,
            },
            build: |_| Ok(Step::Builtin($name, builtin($name))),
        }
    };
}

fn builtin(name: &'static str) -> Kernel {
    // Every name used below is in kernel::BUILTIN_NAMES; a unit test checks it.
    Kernel::builtin(name).unwrap_or_else(|| unreachable!("missing builtin kernel {name}"))
}

/// Largest rank/mode window side accepted.
const MAX_WINDOW: i64 = 255;

macro_rules! rank_def {
    ($name:literal, $pillow:literal, $help:literal) => {
        FilterDef {
            info: || FilterInfo {
                name: $name,
                params: const { &[p("size", Value("3"), "odd window size")] },
                pillow: concat!("ImageFilter.", $pillow),
                help: $help,
            },
            build: |a| {
                let size = a.int(0, 1, MAX_WINDOW)?;
                if size % 2 == 0 {
                    return Err(a.invalid(0, "odd", &size.to_string()));
                }
                Ok(Step::Rank($name, size as u32))
            },
        }
    };
}

const KERNEL_PARAMS: &[ParamInfo] = &[
    p(
        "weights",
        Required,
        "9 or 25 space-separated weights, row-major, top row first",
    ),
    p(
        "scale",
        Computed("sum of weights, 1 if 0"),
        "divide the weighted sum by this",
    ),
    p("offset", Value("0"), "add this after scaling"),
];

const FILTERS: &[FilterDef] = &[
    builtin_kernel!("blur", "BLUR", "5x5 blur (ring of ones)"),
    builtin_kernel!("contour", "CONTOUR", "contour lines (3x3)"),
    builtin_kernel!("detail", "DETAIL", "enhance detail (3x3)"),
    builtin_kernel!("edge_enhance", "EDGE_ENHANCE", "enhance edges (3x3)"),
    builtin_kernel!(
        "edge_enhance_more",
        "EDGE_ENHANCE_MORE",
        "enhance edges strongly (3x3)"
    ),
    builtin_kernel!("emboss", "EMBOSS", "emboss: 128 + p(x,y) - p(x-1,y+1)"),
    builtin_kernel!("find_edges", "FIND_EDGES", "edge detection (3x3 Laplacian)"),
    builtin_kernel!("sharpen", "SHARPEN", "sharpen (3x3)"),
    builtin_kernel!("smooth", "SMOOTH", "smooth (3x3)"),
    builtin_kernel!("smooth_more", "SMOOTH_MORE", "smooth strongly (5x5)"),
    FilterDef {
        info: || FilterInfo {
            name: "kernel",
            params: KERNEL_PARAMS,
            pillow: "ImageFilter.Kernel((n, n), weights, scale, offset)",
            help: "custom 3x3 or 5x5 convolution",
        },
        build: build_kernel,
    },
    FilterDef {
        info: || FilterInfo {
            name: "grayscale",
            params: &[],
            pillow: "Image.convert(\"L\")",
            help: "convert to 8-bit grey (ITU-R 601-2 luma); alpha is dropped",
        },
        build: |_| Ok(Step::Grayscale),
    },
    FilterDef {
        info: || FilterInfo {
            name: "invert",
            params: &[],
            pillow: "ImageOps.invert",
            help: "negative: 255 - v (L and RGB only, as Pillow)",
        },
        build: |_| Ok(Step::Invert),
    },
    FilterDef {
        info: || FilterInfo {
            name: "gaussian_blur",
            params: const { &[p("radius", Value("2"), "standard deviation in pixels")] },
            pillow: "ImageFilter.GaussianBlur(radius)",
            help: "Gaussian blur (3 box passes, as Pillow)",
        },
        build: |a| Ok(Step::GaussianBlur(a.real(0, 0.0, MAX_RADIUS)? as f32)),
    },
    FilterDef {
        info: || FilterInfo {
            name: "box_blur",
            params: const {
                &[p(
                    "radius",
                    Value("1"),
                    "pixels in each direction (may be fractional)",
                )]
            },
            pillow: "ImageFilter.BoxBlur(radius)",
            help: "box blur (mean of a (2r+1)^2 box, edges replicated)",
        },
        build: |a| Ok(Step::BoxBlur(a.real(0, 0.0, MAX_RADIUS)? as f32)),
    },
    FilterDef {
        info: || FilterInfo {
            name: "unsharp_mask",
            params: const {
                &[
                    p("radius", Value("2"), "blur radius"),
                    p("percent", Value("150"), "strength in percent"),
                    p("threshold", Value("3"), "minimum difference to sharpen"),
                ]
            },
            pillow: "ImageFilter.UnsharpMask(radius, percent, threshold)",
            help: "sharpen by subtracting a Gaussian blur",
        },
        build: |a| {
            Ok(Step::UnsharpMask {
                radius: a.real(0, 0.0, MAX_RADIUS)? as f32,
                percent: a.int(1, 0, 1_000_000)? as i32,
                threshold: a.int(2, 0, 255)? as i32,
            })
        },
    },
    rank_def!(
        "median",
        "MedianFilter(size)",
        "median of each size x size window (per band)"
    ),
    rank_def!(
        "min",
        "MinFilter(size)",
        "minimum of each size x size window (per band)"
    ),
    rank_def!(
        "max",
        "MaxFilter(size)",
        "maximum of each size x size window (per band)"
    ),
    FilterDef {
        info: || FilterInfo {
            name: "mode",
            params: const {
                &[p(
                    "size",
                    Value("3"),
                    "window size (even sizes act as size + 1)",
                )]
            },
            pillow: "ImageFilter.ModeFilter(size)",
            help: "most frequent value of each window if it occurs more than twice (per band)",
        },
        build: |a| Ok(Step::Mode(a.int(0, 1, MAX_WINDOW)? as u32)),
    },
    FilterDef {
        info: || FilterInfo {
            name: "resize",
            params: const {
                &[
                    p("size", Required, "WxH, e.g. 640x360"),
                    p(
                        "method",
                        Value("bicubic"),
                        "bicubic, bilinear, lanczos or nearest",
                    ),
                ]
            },
            pillow: "Image.resize((w, h), Resampling.<METHOD>)",
            help: "scale to WxH (RGBA is resampled premultiplied, as Pillow)",
        },
        build: build_resize,
    },
    FilterDef {
        info: || FilterInfo {
            name: "crop",
            params: const {
                &[
                    p("w", Required, "output width"),
                    p("h", Required, "output height"),
                    p(
                        "x",
                        Computed("centered"),
                        "left edge (may be negative or past the image)",
                    ),
                    p(
                        "y",
                        Computed("centered"),
                        "top edge (may be negative or past the image)",
                    ),
                ]
            },
            pillow: "Image.crop((x, y, x + w, y + h))",
            help: "cut a w x h box; parts outside the image are black (zero), as Pillow",
        },
        build: |a| {
            let coord = |i: usize| -> Result<Option<i64>, ChainError> {
                a.get(i)
                    .map(|_| a.int(i, -MAX_COORD, MAX_COORD))
                    .transpose()
            };
            Ok(Step::Crop {
                w: a.int(0, 1, MAX_SIDE)? as u32,
                h: a.int(1, 1, MAX_SIDE)? as u32,
                x: coord(2)?,
                y: coord(3)?,
            })
        },
    },
    FilterDef {
        info: || FilterInfo {
            name: "rotate",
            params: const {
                &[p(
                    "angle",
                    Required,
                    "90, 180 or 270 degrees counter-clockwise",
                )]
            },
            pillow: "Image.transpose(Transpose.ROTATE_<angle>)",
            help: "lossless rotation, counter-clockwise as Pillow",
        },
        build: |a| {
            let s = a.get(0).unwrap_or_default();
            Ok(Step::Transpose(match s {
                "90" => Transpose::Rotate90,
                "180" => Transpose::Rotate180,
                "270" => Transpose::Rotate270,
                _ => return Err(a.invalid(0, "90, 180 or 270", s)),
            }))
        },
    },
    FilterDef {
        info: || FilterInfo {
            name: "flip",
            params: const {
                &[p(
                    "axis",
                    Required,
                    "h (mirror left-right) or v (upside down)",
                )]
            },
            pillow: "Image.transpose(Transpose.FLIP_LEFT_RIGHT | FLIP_TOP_BOTTOM)",
            help: "mirror horizontally (h) or vertically (v)",
        },
        build: |a| {
            let s = a.get(0).unwrap_or_default();
            Ok(Step::Transpose(match s {
                "h" => Transpose::FlipH,
                "v" => Transpose::FlipV,
                _ => return Err(a.invalid(0, "h or v", s)),
            }))
        },
    },
];

/// Largest output side accepted by crop and resize.
const MAX_SIDE: i64 = 16_384;
/// Largest crop offset magnitude accepted.
const MAX_COORD: i64 = 1 << 30;

/// Largest blur radius accepted (keeps Pillow's 32-bit fixed point meaningful).
const MAX_RADIUS: f64 = 10_000.0;

fn build_resize(a: &Args<'_>) -> Result<Step, ChainError> {
    let size = a.get(0).unwrap_or_default();
    let side = |t: &str| {
        t.trim()
            .parse::<i64>()
            .ok()
            .filter(|v| (1..=MAX_SIDE).contains(v))
    };
    let (w, h) = size
        .split_once(['x', 'X'])
        .and_then(|(w, h)| Some((side(w)?, side(h)?)))
        .ok_or_else(|| a.invalid(0, format!("WxH with sides 1..={MAX_SIDE}"), size))?;
    let m = a.get(1).unwrap_or_default();
    let method = match m.to_ascii_lowercase().as_str() {
        "bicubic" => Method::Bicubic,
        "bilinear" => Method::Bilinear,
        "lanczos" => Method::Lanczos,
        "nearest" => Method::Nearest,
        _ => return Err(a.invalid(1, "bicubic, bilinear, lanczos or nearest", m)),
    };
    Ok(Step::Resize {
        w: w as u32,
        h: h as u32,
        method,
    })
}

fn build_kernel(a: &Args<'_>) -> Result<Step, ChainError> {
    let text = a.get(0).unwrap_or_default();
    let weights = text
        .split_whitespace()
        .map(|t| t.parse::<f64>().ok().filter(|v| v.is_finite()))
        .collect::<Option<Vec<f64>>>()
        .ok_or_else(|| a.invalid(0, "space-separated numbers", text))?;
    let scale = a.number(1)?;
    let offset = a.number(2)?.unwrap_or(0.0);
    let kernel = Kernel::new(&weights, scale, offset).map_err(|e| match e {
        kernel::KernelError::WrongCount(n) => {
            a.invalid(0, "9 (3x3) or 25 (5x5) numbers", &format!("{n} numbers"))
        }
        kernel::KernelError::ZeroScale => a.invalid(1, "non-zero", a.get(1).unwrap_or("0")),
        kernel::KernelError::NotFinite => ChainError::InvalidValue {
            filter: "kernel",
            param: "weights",
            expected: "finite 32-bit floats (weight/scale too)".into(),
            got: text.to_string(),
        },
    })?;
    Ok(Step::Kernel(kernel))
}

/// One step of a chain.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    /// A built-in kernel (`emboss` …), with its name.
    Builtin(&'static str, Kernel),
    /// A user kernel.
    Kernel(Kernel),
    Grayscale,
    Invert,
    GaussianBlur(f32),
    BoxBlur(f32),
    UnsharpMask {
        radius: f32,
        percent: i32,
        threshold: i32,
    },
    /// `median`, `min` or `max` with its window size.
    Rank(&'static str, u32),
    Mode(u32),
    Crop {
        w: u32,
        h: u32,
        x: Option<i64>,
        y: Option<i64>,
    },
    Transpose(Transpose),
    Resize {
        w: u32,
        h: u32,
        method: Method,
    },
}

impl Step {
    fn name(&self) -> &'static str {
        match self {
            Step::Builtin(name, _) => name,
            Step::Kernel(_) => "kernel",
            Step::Grayscale => "grayscale",
            Step::Invert => "invert",
            Step::GaussianBlur(_) => "gaussian_blur",
            Step::BoxBlur(_) => "box_blur",
            Step::UnsharpMask { .. } => "unsharp_mask",
            Step::Rank(name, _) => name,
            Step::Mode(_) => "mode",
            Step::Crop { .. } => "crop",
            Step::Transpose(Transpose::FlipH | Transpose::FlipV) => "flip",
            Step::Transpose(_) => "rotate",
            Step::Resize { .. } => "resize",
        }
    }

    /// Output mode for an input mode; `step` is the 1-based position, for errors.
    fn output_mode(&self, step: usize, input: Mode) -> Result<Mode, FilterError> {
        let refuse = || FilterError::UnsupportedMode {
            step,
            filter: self.name(),
            mode: input,
        };
        match self {
            Step::Builtin(..)
            | Step::Kernel(_)
            | Step::GaussianBlur(_)
            | Step::BoxBlur(_)
            | Step::UnsharpMask { .. }
            | Step::Rank(..)
            | Step::Mode(_)
            | Step::Crop { .. }
            | Step::Transpose(_)
            | Step::Resize { .. } => Ok(input),
            Step::Grayscale => Ok(Mode::L),
            Step::Invert if input == Mode::Rgba => Err(refuse()),
            Step::Invert => Ok(input),
        }
    }

    /// Runs the step (the mode has been checked), with reusable working buffers.
    fn run(&self, src: ImageRef<'_>, dst: &mut ImageBuf, work: &mut Work) {
        match self {
            Step::Builtin(_, k) | Step::Kernel(k) => k.apply_in(src, dst, &mut work.kernel),
            Step::Grayscale => color::grayscale(src, dst),
            Step::Invert => color::invert(src, dst),
            Step::GaussianBlur(r) => blur::gaussian_blur(src, dst, *r, &mut work.blur),
            Step::BoxBlur(r) => blur::box_blur(src, dst, *r, 1, &mut work.blur),
            &Step::UnsharpMask {
                radius,
                percent,
                threshold,
            } => blur::unsharp_mask(src, dst, radius, percent, threshold, &mut work.blur),
            &Step::Rank(name, size) => {
                let rank = match name {
                    "min" => 0,
                    "max" => size * size - 1,
                    _ => size * size / 2,
                };
                rank::rank_filter(src, dst, size, rank, &mut work.rank)
            }
            &Step::Mode(size) => rank::mode_filter(src, dst, size, &mut work.rank),
            &Step::Crop { w, h, x, y } => {
                // Centered like ffmpeg's crop: (in - out) / 2, rounded down.
                let x = x.unwrap_or_else(|| (src.width as i64 - w as i64).div_euclid(2));
                let y = y.unwrap_or_else(|| (src.height as i64 - h as i64).div_euclid(2));
                geometry::crop(src, dst, w, h, x, y)
            }
            &Step::Transpose(t) => geometry::transpose(src, dst, t),
            &Step::Resize { w, h, method } => {
                resample::resize(src, dst, w, h, method, &mut work.resize)
            }
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Kernel(k) => {
                f.write_str("kernel=")?;
                for (i, w) in k.weights().iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{w}")?;
                }
                if k.scale_given() {
                    write!(f, ":scale={}", k.scale())?;
                }
                if k.offset() != 0.0 {
                    write!(f, ":offset={}", k.offset())?;
                }
                Ok(())
            }
            Step::GaussianBlur(r) | Step::BoxBlur(r) => write!(f, "{}={r}", self.name()),
            Step::UnsharpMask {
                radius,
                percent,
                threshold,
            } => write!(f, "unsharp_mask={radius}:{percent}:{threshold}"),
            Step::Rank(name, size) => write!(f, "{name}={size}"),
            Step::Mode(size) => write!(f, "mode={size}"),
            Step::Crop { w, h, x, y } => {
                write!(f, "crop={w}:{h}")?;
                if let Some(x) = x {
                    write!(f, ":x={x}")?;
                }
                if let Some(y) = y {
                    write!(f, ":y={y}")?;
                }
                Ok(())
            }
            Step::Transpose(t) => f.write_str(match t {
                Transpose::FlipH => "flip=h",
                Transpose::FlipV => "flip=v",
                Transpose::Rotate90 => "rotate=90",
                Transpose::Rotate180 => "rotate=180",
                Transpose::Rotate270 => "rotate=270",
            }),
            Step::Resize { w, h, method } => write!(f, "resize={w}x{h}:{}", method.name()),
            other => f.write_str(other.name()),
        }
    }
}

/// A chain that runs one output row at a time (see [`Chain::row_filter`]), for callers
/// that produce the input in strips; rows are identical to [`Chain::apply`]'s.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum RowFilter {
    /// The empty chain: each output row is its input row.
    Identity,
    /// One convolution kernel.
    Kernel(Box<kernel::RowKernel>),
}

impl RowFilter {
    /// Rows of context needed above and below each output row.
    pub fn radius(&self) -> usize {
        match self {
            RowFilter::Identity => 0,
            RowFilter::Kernel(k) => k.radius(),
        }
    }

    /// Output row `y` of a `width`×`height` image of `channels` bands, into `out`;
    /// `window[k]` is input row `y + k - radius` (see [`kernel::RowKernel::row`]).
    pub fn row(
        &self,
        window: &[&[u8]],
        y: usize,
        width: usize,
        height: usize,
        channels: usize,
        out: &mut [u8],
    ) {
        match self {
            RowFilter::Identity => {
                let rb = width * channels;
                out[..rb].copy_from_slice(&window[0][..rb]);
            }
            RowFilter::Kernel(k) => k.row(window, y, width, height, channels, out),
        }
    }
}

/// A parsed filter chain. Cheap to clone, shareable between threads.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Chain {
    steps: Vec<Step>,
}

/// Reusable buffers for [`Chain::apply`]: two images to ping-pong between, and the
/// filters' working buffers (rows, strips, weights, intermediate images). They grow to
/// the largest image seen and are then reused without allocating.
#[derive(Debug, Default, Clone)]
pub struct Scratch {
    a: ImageBuf,
    b: ImageBuf,
    work: Work,
}

/// The filters' working buffers, kept between frames.
#[derive(Debug, Default, Clone)]
struct Work {
    kernel: kernel::KernelBufs,
    blur: blur::BlurBufs,
    resize: resample::ResizeBufs,
    rank: rank::RankBufs,
}

impl Scratch {
    /// Empty scratch buffers (allocate on first use).
    pub fn new() -> Self {
        Self::default()
    }
}

/// Every filter with its parameters, defaults and Pillow reference.
pub fn describe_filters() -> Vec<FilterInfo> {
    FILTERS.iter().map(|d| (d.info)()).collect()
}

/// Levenshtein distance, for "did you mean" suggestions.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The candidate closest to `word`, if it is close enough to be a plausible typo.
fn closest(word: &str, candidates: impl Iterator<Item = &'static str>) -> Option<&'static str> {
    let word = word.to_ascii_lowercase();
    let (d, best) = candidates.map(|c| (distance(&word, c), c)).min()?;
    (d <= 2.max(word.chars().count() / 3) || best.starts_with(&word) && !word.is_empty())
        .then_some(best)
}

fn parse_step(text: &str, step_no: usize) -> Result<Step, ChainError> {
    let (name, args) = match text.split_once('=') {
        Some((n, a)) => (n.trim(), Some(a)),
        None => (text.trim(), None),
    };
    if name.is_empty() {
        return Err(ChainError::EmptyStep { step: step_no });
    }
    let infos = describe_filters();
    let Some(idx) = infos.iter().position(|i| i.name == name) else {
        return Err(ChainError::UnknownFilter {
            name: name.to_string(),
            suggestion: closest(name, infos.iter().map(|i| i.name)),
        });
    };
    let info = &infos[idx];
    let mut values: Vec<Option<&str>> = vec![None; info.params.len()];
    let mut seen_key = false;
    let tokens: Vec<&str> = match args {
        Some(a) => a.split(':').map(str::trim).collect(),
        None => Vec::new(),
    };
    // `name=` with nothing after it means no arguments.
    let tokens = if tokens == [""] { Vec::new() } else { tokens };
    for (pos, tok) in tokens.iter().enumerate() {
        let (slot, value) = match tok.split_once('=') {
            Some((k, v)) => {
                seen_key = true;
                let k = k.trim();
                let slot = info
                    .params
                    .iter()
                    .position(|p| p.name == k)
                    .ok_or_else(|| ChainError::UnknownParam {
                        filter: info.name,
                        param: k.to_string(),
                        suggestion: closest(k, info.params.iter().map(|p| p.name)),
                    })?;
                (slot, v.trim())
            }
            None if seen_key => {
                return Err(ChainError::PositionalAfterKey {
                    filter: info.name,
                    value: tok.to_string(),
                });
            }
            None if pos >= info.params.len() => {
                return Err(ChainError::TooManyArgs {
                    filter: info.name,
                    max: info.params.len(),
                    got: tokens.len(),
                });
            }
            None => (pos, *tok),
        };
        if values[slot].is_some() {
            return Err(ChainError::DuplicateParam {
                filter: info.name,
                param: info.params[slot].name,
            });
        }
        values[slot] = Some(value);
    }
    for (v, p) in values.iter().zip(info.params) {
        if v.is_none() && p.default == ParamDefault::Required {
            return Err(ChainError::MissingParam {
                filter: info.name,
                param: p.name,
            });
        }
    }
    let args = Args {
        filter: info.name,
        params: info.params,
        values,
    };
    (FILTERS[idx].build)(&args)
}

impl Chain {
    /// Parses a chain such as `emboss,gaussian_blur=2` or
    /// `kernel=-1 0 0 0 1 0 0 0 0:offset=128,grayscale`. Empty or blank text is the empty
    /// chain (identity).
    pub fn parse(spec: &str) -> Result<Chain, ChainError> {
        if spec.trim().is_empty() {
            return Ok(Chain::default());
        }
        let steps = spec
            .split(',')
            .enumerate()
            .map(|(i, s)| parse_step(s, i + 1))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Chain { steps })
    }

    /// Whether the chain has no steps (applying it returns the input unchanged).
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Number of steps.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// The mode of the output for an input of mode `input`, or the error that applying
    /// the chain would give (a step that Pillow refuses for the mode reaching it).
    pub fn output_mode(&self, input: Mode) -> Result<Mode, FilterError> {
        self.steps
            .iter()
            .enumerate()
            .try_fold(input, |m, (i, s)| s.output_mode(i + 1, m))
    }

    /// The chain as a [`RowFilter`], if each output row can be computed from a few input
    /// rows: the empty chain, or a single 3×3 / 5×5 kernel on an 8-bit path (every
    /// built-in kernel). The output keeps the input's size and mode.
    pub fn row_filter(&self) -> Option<RowFilter> {
        match self.steps.as_slice() {
            [] => Some(RowFilter::Identity),
            [Step::Builtin(_, k) | Step::Kernel(k)] => {
                k.rows().map(|k| RowFilter::Kernel(Box::new(k)))
            }
            _ => None,
        }
    }

    /// Applies every step to `src`. Intermediate and final images live in `scratch`,
    /// ping-ponging between its two buffers, so nothing is allocated once they have grown
    /// to the frame size. The empty chain returns `src` itself.
    pub fn apply<'a>(
        &self,
        src: ImageRef<'a>,
        scratch: &'a mut Scratch,
    ) -> Result<ImageRef<'a>, FilterError> {
        src.validate()?;
        self.output_mode(src.mode)?;
        let Some((first, rest)) = self.steps.split_first() else {
            return Ok(src);
        };
        let Scratch { a, b, work } = scratch;
        let (mut front, mut back): (&'a mut ImageBuf, &'a mut ImageBuf) = (a, b);
        first.run(src, front, work);
        for step in rest {
            step.run(front.as_ref(), back, work);
            std::mem::swap(&mut front, &mut back);
        }
        let out: &'a ImageBuf = front;
        Ok(out.as_ref())
    }
}

impl fmt::Display for Chain {
    /// The canonical text of the chain; parsing it gives the same chain.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.steps.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{s}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::{self, Level};

    fn err(spec: &str) -> String {
        Chain::parse(spec).unwrap_err().to_string()
    }

    #[test]
    fn parses_and_prints() {
        let c =
            Chain::parse(" emboss , grayscale,kernel=-1 0 0 0 1 0 0 0 0 : offset = 128").unwrap();
        assert_eq!(c.len(), 3);
        assert_eq!(
            c.to_string(),
            "emboss,grayscale,kernel=-1 0 0 0 1 0 0 0 0:offset=128"
        );
        assert_eq!(Chain::parse(&c.to_string()).unwrap(), c);
        let c =
            Chain::parse("crop=10:20,crop=1:2:-3:4,crop=5:5:y=2,rotate=270,flip=v,median,mode=4")
                .unwrap();
        assert_eq!(
            c.to_string(),
            "crop=10:20,crop=1:2:x=-3:y=4,crop=5:5:y=2,rotate=270,flip=v,median=3,mode=4"
        );
        assert_eq!(Chain::parse(&c.to_string()).unwrap(), c);
        let c = Chain::parse("resize=640x360,resize = 32X16 : nearest").unwrap();
        assert_eq!(c.to_string(), "resize=640x360:bicubic,resize=32x16:nearest");
        assert!(Chain::parse("").unwrap().is_empty());
        assert!(Chain::parse("  ").unwrap().is_empty());
        let k = Chain::parse("kernel=1 2 1 2 4 2 1 2 1:16:0.5").unwrap();
        assert_eq!(
            k.to_string(),
            "kernel=1 2 1 2 4 2 1 2 1:scale=16:offset=0.5"
        );
        assert_eq!(
            Chain::parse("kernel=weights=1 1 1 1 1 1 1 1 1:scale=9")
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn errors_name_the_problem() {
        assert_eq!(
            err("embos"),
            "unknown filter 'embos' (did you mean 'emboss'?)"
        );
        assert_eq!(err("xyzzy"), "unknown filter 'xyzzy'");
        assert_eq!(err("emboss,,blur"), "step 2 of the filter chain is empty");
        assert_eq!(
            err("emboss=3"),
            "emboss: takes at most 0 argument(s), got 1"
        );
        assert_eq!(
            err("kernel"),
            "kernel: missing required parameter 'weights'"
        );
        assert_eq!(
            err("kernel=1 1 1"),
            "kernel: weights must be 9 (3x3) or 25 (5x5) numbers, got 3 numbers"
        );
        assert_eq!(
            err("kernel=1 1 1 1 1 1 1 1 x"),
            "kernel: weights must be space-separated numbers, got 1 1 1 1 1 1 1 1 x"
        );
        assert_eq!(
            err("kernel=1 1 1 1 1 1 1 1 1:scal=2"),
            "kernel: unknown parameter 'scal' (did you mean 'scale'?)"
        );
        assert_eq!(
            err("kernel=1 1 1 1 1 1 1 1 1:0"),
            "kernel: scale must be non-zero, got 0"
        );
        assert_eq!(
            err("kernel=1 1 1 1 1 1 1 1 1:scale=1:2"),
            "kernel: positional argument '2' after a key=value argument"
        );
        assert_eq!(
            err("kernel=1 1 1 1 1 1 1 1 1:2:scale=1"),
            "kernel: parameter 'scale' given twice"
        );
        assert_eq!(
            err("kernel=1 1 1 1 1 1 1 1 1:2:1:3"),
            "kernel: takes at most 3 argument(s), got 4"
        );
    }

    #[test]
    fn modes_and_refusals() {
        let c = Chain::parse("emboss,grayscale,invert").unwrap();
        assert_eq!(c.output_mode(Mode::Rgba), Ok(Mode::L));
        let c = Chain::parse("emboss,invert").unwrap();
        let e = c.output_mode(Mode::Rgba).unwrap_err();
        assert_eq!(e.to_string(), "step 2 'invert': Pillow refuses mode RGBA");
        assert_eq!(c.output_mode(Mode::Rgb), Ok(Mode::Rgb));
    }

    #[test]
    fn apply_ping_pongs_without_reallocating() {
        let data: Vec<u8> = (0..(16 * 9 * 3)).map(|i| (i * 37 % 251) as u8).collect();
        let src = ImageRef::new(&data, 16, 9, 48, Mode::Rgb).unwrap();
        let c = Chain::parse("emboss,invert,smooth,grayscale").unwrap();
        let mut scratch = Scratch::new();
        let first = c.apply(src, &mut scratch).unwrap().data.to_vec();
        let ptrs = (scratch.a.data().as_ptr(), scratch.b.data().as_ptr());
        let again = c.apply(src, &mut scratch).unwrap();
        assert_eq!(again.data, &first[..]);
        assert_eq!(again.mode, Mode::L);
        assert_eq!((scratch.a.data().as_ptr(), scratch.b.data().as_ptr()), ptrs);
        // Empty chain: the input itself.
        let id = Chain::parse("").unwrap().apply(src, &mut scratch).unwrap();
        assert_eq!(id.data.as_ptr(), data.as_ptr());
    }

    #[test]
    fn working_buffers_are_reused_between_frames() {
        // Every step family with working buffers, RGBA (premultiplied resize) and RGB.
        let chains = [
            "detail,smooth_more,kernel=1 2 3 4 5 6 7 8 9:scale=7,gaussian_blur=2,box_blur=1.5,\
             unsharp_mask,resize=20x9,resize=11x14:lanczos,resize=40x30:nearest,emboss",
            "resize=13x9:bilinear,detail,resize=31x20:nearest",
            "median=5,min=3,max=5,mode=3,median=3,mode=5,max=3",
        ];
        for mode in [Mode::Rgba, Mode::Rgb] {
            let c = mode.channels();
            let data: Vec<u8> = (0..(37 * 23 * c)).map(|i| (i * 89 % 241) as u8).collect();
            let src = ImageRef::new(&data, 37, 23, 37 * c, mode).unwrap();
            for text in chains {
                let chain = Chain::parse(text).unwrap();
                let mut scratch = Scratch::new();
                let fingerprint = |s: &Scratch| {
                    let mut f = vec![
                        (s.a.data().as_ptr() as usize, s.a.data().len()),
                        (s.b.data().as_ptr() as usize, s.b.data().len()),
                    ];
                    f.extend(s.work.kernel.fingerprint());
                    f.extend(s.work.blur.fingerprint());
                    f.extend(s.work.resize.fingerprint());
                    f.extend(s.work.rank.fingerprint());
                    f
                };
                let first = chain.apply(src, &mut scratch).unwrap().data.to_vec();
                let before = fingerprint(&scratch);
                let again = chain.apply(src, &mut scratch).unwrap().data.to_vec();
                assert_eq!(again, first, "{text} {mode}");
                assert_eq!(fingerprint(&scratch), before, "{text} {mode}: reallocated");
                // Same output as with fresh buffers.
                let fresh = chain.apply(src, &mut Scratch::new()).unwrap().data.to_vec();
                assert_eq!(fresh, first, "{text} {mode}");
            }
        }
    }

    #[test]
    fn every_instruction_set_level_gives_the_same_result() {
        let chains = [
            "detail",
            "smooth",
            "sharpen",
            "emboss",
            "smooth_more",
            "blur",
            "kernel=1 2 3 4 5 6 7 8 9:scale=7:offset=0.3",
            "gaussian_blur=2",
            "box_blur=1.5",
            "unsharp_mask=2:150:3",
            "unsharp_mask=1:40:0",
            "unsharp_mask=3:1000000:1",
            "median=3",
            "median=5",
            "min=3",
            "max=5",
            "mode=3",
            "resize=40x30:bicubic",
            "resize=50x9:lanczos",
            "resize=200x40:bilinear",
            "grayscale",
        ];
        for mode in [Mode::L, Mode::Rgb, Mode::Rgba] {
            let (w, h) = (131, 17);
            let c = mode.channels();
            let data: Vec<u8> = (0..(w * h * c))
                .map(|i| (i * 7919 % 251 + i / 97) as u8)
                .collect();
            let src = ImageRef::new(&data, w as u32, h as u32, w * c, mode).unwrap();
            for text in chains {
                let chain = Chain::parse(text).unwrap();
                let run = |level| {
                    simd::with_level(level, || {
                        chain.apply(src, &mut Scratch::new()).unwrap().data.to_vec()
                    })
                };
                let base = run(Level::Base);
                for level in Level::all() {
                    assert_eq!(run(level), base, "{text} {mode} {level:?}");
                }
            }
        }
    }

    #[test]
    fn every_filter_is_described_and_builtins_exist() {
        let infos = describe_filters();
        for name in kernel::BUILTIN_NAMES {
            assert!(infos.iter().any(|i| i.name == name), "{name}");
            assert!(Chain::parse(name).is_ok());
        }
    }

    #[test]
    fn chain_is_send_sync() {
        fn check<T: Send + Sync + Clone + fmt::Debug>() {}
        check::<Chain>();
    }
}
