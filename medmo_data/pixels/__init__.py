"""Pixels: decode a stored image (DICOM, NIfTI slice, 16-bit PNG, TIFF, JPEG) into display pixels, window
and resize them, and convert box annotations to XYXY. Public: `decode.decode`, `dicom.read_dicom`,
`nifti.read_nifti_slice`, `transform.apply_window` / `resize`, `boxes.from_xywh` / `from_yolo` / ...
"""
