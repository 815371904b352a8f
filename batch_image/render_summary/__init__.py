"""Render-log telemetry job: CSV of frame/GPU/latency samples -> per-device summary in the warehouse."""
