/*
 * rowjpeg.c: a small shim over the libjpeg API of the libjpeg-turbo that
 * turbojpeg-sys vendors and links, for src/sink/rowjpeg.rs.
 *
 * The Rust side converts RGB rows to downsampled YCbCr itself and hands them
 * over one iMCU row (16 luma rows, 8 rows of each chroma component) at a time;
 * this file feeds them to jpeg_write_raw_data with exactly the parameters
 * TurboJPEG's tj3Compress8 uses for TJPF_RGB, TJSAMP_420 and a quality (its
 * setCompDefaults with default parameters), so the files are byte-identical.
 *
 * Errors: libjpeg reports fatal errors through error_exit, which must not
 * return. Every entry point below does its own setjmp and error_exit
 * longjmps back to it, so the jump never leaves C (never crosses a Rust
 * frame); the entry point then returns -1 with the message in the handle,
 * which rowjpeg_message returns. libjpeg's own messages to stderr are
 * suppressed.
 *
 * Output: a destination manager over a caller-provided buffer (of
 * tj3JPEGBufSize's worst-case size); running out of room is an error, never a
 * reallocation.
 */

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jpeglib.h"
#include "jerror.h"

typedef struct rowjpeg {
  /* First member, so that a j_common_ptr / j_compress_ptr is a rowjpeg *. */
  struct jpeg_compress_struct cinfo;
  struct jpeg_error_mgr jerr;
  struct jpeg_destination_mgr dest;
  jmp_buf jump;
  unsigned char *buf;
  size_t buf_len;
  size_t written;
  int overflow;
  int warning;
  char message[JMSG_LENGTH_MAX];
} rowjpeg;

static void rj_error_exit(j_common_ptr cinfo)
{
  rowjpeg *rj = (rowjpeg *)cinfo;

  if (rj->overflow)
    snprintf(rj->message, sizeof(rj->message),
             "the JPEG does not fit in its %zu-byte buffer", rj->buf_len);
  else
    (*cinfo->err->format_message) (cinfo, rj->message);
  longjmp(rj->jump, 1);
}

static void rj_emit_message(j_common_ptr cinfo, int msg_level)
{
  rowjpeg *rj = (rowjpeg *)cinfo;

  /* TurboJPEG fails a compression that raised a warning: keep the first. */
  if (msg_level < 0 && !rj->warning) {
    rj->warning = 1;
    (*cinfo->err->format_message) (cinfo, rj->message);
  }
}

static void rj_output_message(j_common_ptr cinfo)
{
  (void)cinfo;
}

static void rj_init_destination(j_compress_ptr cinfo)
{
  rowjpeg *rj = (rowjpeg *)cinfo;

  rj->dest.next_output_byte = rj->buf;
  rj->dest.free_in_buffer = rj->buf_len;
  rj->written = 0;
}

static boolean rj_empty_output_buffer(j_compress_ptr cinfo)
{
  rowjpeg *rj = (rowjpeg *)cinfo;

  rj->overflow = 1;
  ERREXIT(cinfo, JERR_BUFFER_SIZE);
  return FALSE;
}

static void rj_term_destination(j_compress_ptr cinfo)
{
  rowjpeg *rj = (rowjpeg *)cinfo;

  rj->written = rj->buf_len - rj->dest.free_in_buffer;
}

/* Back to the start state, the image's memory freed (cannot itself fail). */
static void rj_reset(rowjpeg *rj)
{
  jpeg_abort_compress(&rj->cinfo);
}

/* jpeg_create_compress under its own setjmp: 0, or -1 with the message set. */
static int rj_create(rowjpeg *rj)
{
  if (setjmp(rj->jump)) {
    /* Failed before or after its allocations: destroy frees what there is. */
    jpeg_destroy_compress(&rj->cinfo);
    return -1;
  }
  jpeg_create_compress(&rj->cinfo);
  return 0;
}

/* A new handle, or NULL (out of memory, or libjpeg refused: message in msg). */
rowjpeg *rowjpeg_new(char *msg, size_t msg_len)
{
  rowjpeg *rj = (rowjpeg *)calloc(1, sizeof(rowjpeg));

  if (rj == NULL) {
    if (msg_len > 0) snprintf(msg, msg_len, "out of memory");
    return NULL;
  }
  rj->cinfo.err = jpeg_std_error(&rj->jerr);
  rj->jerr.error_exit = rj_error_exit;
  rj->jerr.emit_message = rj_emit_message;
  rj->jerr.output_message = rj_output_message;
  if (rj_create(rj) != 0) {
    if (msg_len > 0) snprintf(msg, msg_len, "%s", rj->message);
    free(rj);
    return NULL;
  }
  rj->dest.init_destination = rj_init_destination;
  rj->dest.empty_output_buffer = rj_empty_output_buffer;
  rj->dest.term_destination = rj_term_destination;
  rj->cinfo.dest = &rj->dest;
  return rj;
}

void rowjpeg_free(rowjpeg *rj)
{
  if (rj == NULL) return;
  /* jpeg_destroy only frees memory: it raises no errors. */
  jpeg_destroy_compress(&rj->cinfo);
  free(rj);
}

/* The message of the last error (or warning) this handle reported. */
const char *rowjpeg_message(const rowjpeg *rj)
{
  return rj->message;
}

/*
 * Starts a width x height image at quality (1..=100), written to buf (buf_len
 * bytes). Parameters as tj3Compress8 sets them (setCompDefaults for TJPF_RGB,
 * TJSAMP_420, default parameters), then raw data in.
 * Returns 0, or -1 with the message set.
 */
int rowjpeg_begin(rowjpeg *rj, uint32_t width, uint32_t height, int quality,
                  unsigned char *buf, size_t buf_len)
{
  j_compress_ptr cinfo = &rj->cinfo;

  rj->overflow = 0;
  rj->warning = 0;
  rj->message[0] = '\0';
  if (setjmp(rj->jump)) {
    rj_reset(rj);
    return -1;
  }
  rj_reset(rj);
  rj->buf = buf;
  rj->buf_len = buf_len;
  rj->written = 0;

  cinfo->image_width = (JDIMENSION)width;
  cinfo->image_height = (JDIMENSION)height;
  cinfo->data_precision = 8;
  /* setCompDefaults(this, TJPF_RGB) */
  cinfo->in_color_space = JCS_EXT_RGB;
  cinfo->input_components = 3;
  jpeg_set_defaults(cinfo);
  cinfo->restart_interval = 0;
  cinfo->restart_in_rows = 0;
  cinfo->X_density = 1;
  cinfo->Y_density = 1;
  cinfo->density_unit = 0;
  cinfo->mem->max_memory_to_use = 0;
  jpeg_set_quality(cinfo, quality, TRUE);
  cinfo->dct_method = JDCT_ISLOW;
  jpeg_set_colorspace(cinfo, JCS_YCbCr);
  cinfo->optimize_coding = FALSE;
  cinfo->arith_code = FALSE;
  /* TJSAMP_420: luma 2x2, chroma 1x1. */
  cinfo->comp_info[0].h_samp_factor = 2;
  cinfo->comp_info[1].h_samp_factor = 1;
  cinfo->comp_info[2].h_samp_factor = 1;
  cinfo->comp_info[0].v_samp_factor = 2;
  cinfo->comp_info[1].v_samp_factor = 1;
  cinfo->comp_info[2].v_samp_factor = 1;
  /* tj3CompressFromYUVPlanes8 */
  cinfo->raw_data_in = TRUE;

  jpeg_start_compress(cinfo, TRUE);
  return 0;
}

/*
 * Compresses one iMCU row: 16 luma rows of at least y_width samples, y_stride
 * bytes apart, from y; 8 rows of at least c_width samples, c_stride bytes
 * apart, from cb and from cr. The widths must cover each component's
 * width_in_blocks * 8 samples (checked: libjpeg reads that many).
 * Returns 0, or -1 with the message set.
 */
int rowjpeg_write(rowjpeg *rj, const unsigned char *y, size_t y_width,
                  size_t y_stride, const unsigned char *cb,
                  const unsigned char *cr, size_t c_width, size_t c_stride)
{
  j_compress_ptr cinfo = &rj->cinfo;
  JSAMPROW y_rows[2 * DCTSIZE], cb_rows[DCTSIZE], cr_rows[DCTSIZE];
  JSAMPARRAY planes[3];
  int i;

  if (setjmp(rj->jump)) {
    rj_reset(rj);
    return -1;
  }
  /* jpeg_write_raw_data checks the state; this checks what it reads. */
  if (cinfo->comp_info == NULL || cinfo->num_components != 3 ||
      cinfo->max_v_samp_factor != 2) {
    snprintf(rj->message, sizeof(rj->message),
             "rowjpeg_write called outside a 4:2:0 raw-data compression");
    rj_reset(rj);
    return -1;
  }
  if (y_width < (size_t)cinfo->comp_info[0].width_in_blocks * DCTSIZE ||
      c_width < (size_t)cinfo->comp_info[1].width_in_blocks * DCTSIZE ||
      c_width < (size_t)cinfo->comp_info[2].width_in_blocks * DCTSIZE ||
      y_stride < y_width || c_stride < c_width) {
    snprintf(rj->message, sizeof(rj->message),
             "rowjpeg_write: rows of %zu/%zu samples are narrower than the "
             "image's blocks", y_width, c_width);
    rj_reset(rj);
    return -1;
  }
  for (i = 0; i < 2 * DCTSIZE; i++)
    y_rows[i] = (JSAMPROW)(y + i * y_stride);
  for (i = 0; i < DCTSIZE; i++) {
    cb_rows[i] = (JSAMPROW)(cb + i * c_stride);
    cr_rows[i] = (JSAMPROW)(cr + i * c_stride);
  }
  planes[0] = y_rows;
  planes[1] = cb_rows;
  planes[2] = cr_rows;
  if (jpeg_write_raw_data(cinfo, planes, 2 * DCTSIZE) != 2 * DCTSIZE) {
    if (!rj->warning)
      snprintf(rj->message, sizeof(rj->message),
               "jpeg_write_raw_data did not take the rows");
    rj_reset(rj);
    return -1;
  }
  return 0;
}

/*
 * Ends the image; *written is the JPEG's length in the buffer.
 * Returns 0, or -1 with the message set (also when libjpeg warned, as
 * TurboJPEG fails then too).
 */
int rowjpeg_finish(rowjpeg *rj, size_t *written)
{
  *written = 0;
  if (setjmp(rj->jump)) {
    rj_reset(rj);
    return -1;
  }
  jpeg_finish_compress(&rj->cinfo);
  if (rj->warning) return -1;
  *written = rj->written;
  return 0;
}

/* Abandons the image in progress, if any (cannot fail). */
void rowjpeg_abort(rowjpeg *rj)
{
  rj_reset(rj);
}
