"""Run the stm32 image's boot.py on the fake pyb; print the USB mode it leaves."""
import mpcheck

mpcheck.use("stm32")
import pyb  # noqa: E402
import boot  # noqa: E402, F401 - runs it

print(pyb.usb_mode())
