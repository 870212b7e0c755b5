"""Size caps every decoder checks against a file's DECLARED size before decoding or reading it.

A small file can declare a huge image (a deflated DICOM or a .nii.gz of 12000 x 12000 decodes to GiBs);
the declared size is refused as `decompression_bomb` before any pixel is decoded. No image file is read
beyond MAX_FILE_BYTES (`file_too_large`).
"""

MAX_PIXELS = 80_000_000  # one decoded 2-D image (rows x columns): ~9000 x 9000
MAX_SAMPLES = 512 * 1024 * 1024  # values decoded at once: rows x columns x frames x samples per pixel
MAX_FILE_BYTES = 1 << 30  # bytes read from one image file (1 GiB)
MAX_VOLUME_BYTES = 8 << 30  # a NIfTI volume's declared shape x dtype (read one slice at a time)
