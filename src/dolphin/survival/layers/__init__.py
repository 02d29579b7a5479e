"""Layer plug-ins: the base class, the sensor board and the loader (by import path)."""

from dolphin.survival.layers.base import Category, Layer, NoOptions, SensorBoard, SensorRole, Valid, build_layer

__all__ = ["Category", "Layer", "NoOptions", "SensorBoard", "SensorRole", "Valid", "build_layer"]
