"""Hand position on a path of keyframes, shared by the simulated board
(boards/unix) and the bench rig (boards/rig_pico), so both move the hand the
same way: linear between keyframes in integer arithmetic, held outside them.
"""


def position(kt, kx, t):
    """Hand position at time t; kt keyframe times (increasing), kx positions in counts."""
    if not kt:
        return 0
    if t <= kt[0]:
        return kx[0]
    for i in range(1, len(kt)):
        if t <= kt[i]:
            a, b, xa, xb = kt[i - 1], kt[i], kx[i - 1], kx[i]
            return xa + (xb - xa) * (t - a) // (b - a)
    return kx[-1]
