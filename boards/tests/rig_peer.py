"""The bench rig's firmware (boards/rig_pico) in the Unix port, with the fake
port modules, on stdin/stdout: a serial peer for the host driver's tests
(host/tests/test_benchrig.py). Its commands, notifications and line intake
are the rig's own; its loop sleeps until a byte comes or 2 ms pass (the Pico's
spins), and its PIO takes every word at once and never runs dry (a process
on a busy host would see false underruns). Commands starting with `_` stand
in for the device's wires, which the fakes cannot drive:
  _fire <width_us>   a pulse on the fire line that the width meter timed
  _en 0|1, _ind 0|1  the device's laser-enable and indicator lines
  _out <name>        the level the rig drives on one of its output lines
  _fill <n>          n events at once (ring overflow)"""
import select
import sys

import mpcheck

mpcheck.use("rig_pico")
import machine  # noqa: E402
import rp2  # noqa: E402
import board  # noqa: E402
import pins  # noqa: E402

rig = board.make()
rig._quad.put = lambda word, shift=0: None
rig._quad.tx_fifo = lambda: 0
rig_command = rig.command


def wired(w):
    if w[0] == "_fire":
        rp2.StateMachine.made[4].rx.append(int(w[1]))
        rig._fire.drive(1)
        rig._fire.drive(0)
        return "= ok"
    if w[0] in ("_en", "_ind"):
        (rig._en if w[0] == "_en" else rig._ind).drive(int(w[1]))
        return "= ok"
    if w[0] == "_out":
        return "= %d" % machine.Pin(getattr(pins, w[1].upper())).value()
    if w[0] == "_fill":
        for i in range(int(w[1])):
            rig._ind.drive(i % 2)
        return "= ok"
    return rig_command(w)


rig.command = wired
poll = select.poll()
poll.register(sys.stdin, select.POLLIN)
rig.start()
rig.notify("r %d boot" % rig.now())
while True:
    poll.poll(2)
    rig._read_commands()
    rig._t_out = max(rig._t_out, rig.now() + 1000)
    rig._refill()
    rig._report()
