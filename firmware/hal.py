"""The HAL contract: everything the firmware core needs from a board.

A board module (`boards/<name>/board.py`) provides `make()` returning an object
with the attributes below. The core never imports `machine` or a port module; it
only calls these. Timing-critical work (pulse width, encoder counting, the
count/time compare that fires a pulse) is the board's job, done in hardware on
real boards, so the core's loop only has to keep up with pulses, not with edges.

Conventions
- Times are 30-bit microsecond ticks (`ticks_us()`, modulo 2**30, what
  time.ticks_us() gives on 32-bit ports): compare them with ticks.diff, never `<`.
- Input bits are fail-safe: an interlock bit is 1 only when that interlock is
  closed and healthy, so a cut wire reads as open.
- Nothing here allocates once the board is made; `laser.take_pulse` fills a
  caller-owned array.

board
  name: str                         short board name, in the handshake
  limits: dict                      hard limits (firmware/limits.py names the keys)
  settings: dict                    board settings (ready delay, calibration, ...)
  ticks_us() -> int                 the board clock, 0..2**30-1 (virtual on the simulated board)
  wait(deadline_us) -> None         idle until the deadline or any input event
                                    (serial byte, input change, pulse fired, and
                                    the encoder changing direction, so the core
                                    sees each turn of the hand where it happened)
  reset_cause() -> int              one of the RESET_* values below
  reboot(cause) -> never returns    restart the firmware after a fatal error

board.laser                         the pulse output stage and its photodiode
  off()                             enable low and any armed pulse cancelled (first
                                    thing at boot, on any fault)
  enable(on)                        the laser-enable line (gates every pulse); the MCU
                                    boards leave it low on enable(True) while an
                                    interlock is open or a latched trip (below) has
                                    not been read yet
  configure(width_us, power_w)      pulse shape for the next pulses
  arm(not_before_us, target, dir)   one-shot: fire one pulse at the first moment that
                                    is not before `not_before_us` and at which the
                                    encoder position has reached `target` moving in
                                    `dir` (+1/-1); dir 0 means time only
  disarm()
  armed() -> bool
  take_pulse(rec) -> bool           pop one fired pulse into rec (array 'i', 3):
                                    t_us, encoder count, measured energy in uJ
  stray_light() -> bool             photodiode saw light with no pulse commanded
  pd_step_uj                        the measured energy's resolution in uJ (an
                                    ADC step; 1 where it is exact): readings are
                                    whole steps, light at a limit reads the step below

board.encoder
  count() -> int                    handpiece position in quadrature counts (x4)

board.inputs
  read() -> int                     bitmask, bits in firmware/interlocks.py. On a
                                    board with interlock IRQs a trip is latched (SR-4):
                                    an interlock whose IRQ fired since the last read
                                    reads open once, even if it has closed again, so
                                    an opening shorter than a control step still
                                    reaches the core

board.indicator
  set(on)                           emission indicator (lamp/LED on the handpiece)

board.link                          the serial line (USB-CDC, UART or a pty)
  readinto(buf) -> int              non-blocking: bytes read, 0 if none, -1 while
                                    the host has closed its end (end of input: a
                                    lost link; a board that cannot tell never says it)
  write(buf) -> int                 non-blocking: the bytes taken from the front of
                                    buf (0 when the line is full), never waiting for
                                    the host; the core queues the rest (report.py)

board.store                         non-volatile store: two blocks of STORE_BLOCK bytes
  read(slot) -> bytes or None       None only if the slot was never written; a slot
                                    that is there but cannot be read gives short or
                                    empty bytes (corrupt, never blank)
  write(slot, data)                 never touches the other slot, even when cut
                                    by a power loss half way

board.wdt
  start(timeout_ms)
  feed()
"""

RESET_POWER = 0
RESET_WATCHDOG = 1
RESET_SOFT = 2
RESET_EXCEPTION = 3  # the firmware caught an exception and restarted itself

STORE_BLOCK = 128
