import numpy as np
import pytest

from medmo_data.pixels import boxes


def test_xywh_yolo_onebased_points():
    assert boxes.from_xywh(10, 20, 5, 6) == [10.0, 20.0, 15.0, 26.0]
    assert boxes.from_yolo(0.5, 0.5, 0.2, 0.4, 100, 50) == pytest.approx([40.0, 15.0, 60.0, 35.0])
    # YOLO box touching the right/bottom edge
    assert boxes.from_yolo(0.9, 0.9, 0.2, 0.2, 100, 100) == pytest.approx([80.0, 80.0, 100.0, 100.0])
    assert boxes.from_one_based(1, 1, 10, 20) == [0.0, 0.0, 9.0, 19.0]
    assert boxes.from_points([[3, 9], [7, 2], [5, 5]]) == [3.0, 2.0, 7.0, 9.0]


def test_instance_mask_touching_instances():
    m = np.zeros((6, 8), dtype=np.uint16)
    m[1:4, 1:4] = 1  # rows 1-3, cols 1-3
    m[1:4, 4:7] = 2  # touches instance 1 on the right
    m[5, 7] = 9  # single pixel
    assert boxes.from_instance_mask(m) == [
        (1, [1.0, 1.0, 4.0, 4.0]), (2, [4.0, 1.0, 7.0, 4.0]), (9, [7.0, 5.0, 8.0, 6.0])]
    assert boxes.from_instance_mask(np.zeros((3, 3), int)) == []


def test_check_rejects_and_clips():
    assert boxes.check([-0.5, 0, 10, 100.4], 100, 100) == [0.0, 0.0, 10.0, 100.0]
    for bad in ([0, 0, float("nan"), 1], [5, 5, 4, 9], [0, 0, 200, 10], [3, 3, 3, 9], ["a", 0, 1, 1]):
        with pytest.raises(boxes.BoxError):
            boxes.check(bad, 100, 100)


def test_scale_clip():
    assert boxes.scale([10, 20, 30, 40], 0.5, 2) == [5.0, 40.0, 15.0, 80.0]
    assert boxes.clip([-5, -5, 120, 50], 100, 40) == [0.0, 0.0, 100.0, 40.0]
