//! Scaling a preview JPEG down for `?width=`: libjpeg-turbo's DCT scaling does most of
//! the work (1/2, 1/4, 1/8 while decoding), the filter crate's bilinear resize the rest.

use crate::sink::encode::{EncodeOptions, Encoder, ImageFormat};
use crate::sink::preview::PREVIEW_QUALITY;
use bytes::Bytes;
use frameflow_filters::{ImageBuf, Mode};

/// `jpeg` re-encoded `width` pixels wide (aspect kept), or the original if it is not wider.
pub fn to_width(jpeg: &[u8], width: u32) -> Result<Bytes, String> {
    let err = |e: turbojpeg::Error| format!("preview scaler: {e}");
    let mut d = turbojpeg::Decompressor::new().map_err(err)?;
    let header = d.read_header(jpeg).map_err(err)?;
    let (w0, h0) = (header.width, header.height);
    let target = width as usize;
    if w0 <= target || w0 == 0 || h0 == 0 {
        return Ok(Bytes::copy_from_slice(jpeg));
    }
    // The smallest DCT scale that stays at least as wide as asked.
    let factor = [
        turbojpeg::ScalingFactor::ONE_EIGHTH,
        turbojpeg::ScalingFactor::ONE_QUARTER,
        turbojpeg::ScalingFactor::ONE_HALF,
        turbojpeg::ScalingFactor::ONE,
    ]
    .into_iter()
    .find(|f| f.scale(w0) >= target)
    .unwrap_or(turbojpeg::ScalingFactor::ONE);
    d.set_scaling_factor(factor).map_err(err)?;
    let scaled = header.scaled(factor);
    let (sw, sh) = (scaled.width, scaled.height);
    let mut pixels = vec![0u8; sw * sh * 3];
    d.decompress(
        jpeg,
        turbojpeg::Image {
            pixels: pixels.as_mut_slice(),
            width: sw,
            pitch: sw * 3,
            height: sh,
            format: turbojpeg::PixelFormat::RGB,
        },
    )
    .map_err(err)?;
    let img = ImageBuf::from_vec(sw as u32, sh as u32, Mode::Rgb, pixels)
        .map_err(|e| format!("preview scaler: {e}"))?;
    let out_h = ((h0 as u64 * u64::from(width) + w0 as u64 / 2) / w0 as u64).max(1) as u32;
    let chain = frameflow_filters::Chain::parse(&format!("resize={width}x{out_h}:bilinear"))
        .map_err(|e| format!("preview scaler: {e}"))?;
    let mut scratch = frameflow_filters::Scratch::default();
    let small = chain
        .apply(img.as_ref(), &mut scratch)
        .map_err(|e| format!("preview scaler: {e}"))?;
    let mut enc = Encoder::new(EncodeOptions {
        format: ImageFormat::Jpeg,
        quality: PREVIEW_QUALITY,
    })
    .map_err(|e| e.to_string())?;
    let bytes = enc.encode(small).map_err(|e| e.to_string())?;
    Ok(Bytes::copy_from_slice(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_to_the_asked_width() {
        let img = ImageBuf::new(320, 180, Mode::Rgb);
        let mut enc = Encoder::new(EncodeOptions {
            format: ImageFormat::Jpeg,
            quality: 75,
        })
        .unwrap();
        let jpeg = enc.encode(img.as_ref()).unwrap().to_vec();
        let small = to_width(&jpeg, 100).unwrap();
        let h = turbojpeg::read_header(&small).unwrap();
        assert_eq!((h.width, h.height), (100, 56));
        let same = to_width(&jpeg, 640).unwrap();
        assert_eq!(same.len(), jpeg.len());
        assert!(to_width(b"not a jpeg", 10).is_err());
    }
}
