"""STM32F405 timer registers the pyb.Timer API does not reach, and their arithmetic.

Reference: RM0090 rev 19. TIM8 is an advanced-control timer (section 17.4,
"TIM1 and TIM8 registers"); TIM4 a general-purpose timer (section 18.4,
"TIM2 to TIM5 registers"). Base addresses from RM0090 section 2.3, table 1.

pyb.Timer sets up TIM8 (PWM output, break input polarity) and TIM4 (encoder
mode); these writes add what it does not expose:
- TIM8_CR1.OPM (17.4.1): one-pulse mode, the counter stops after one period
  (ARPE=0 in the same write: ARR writes act at once);
- TIM8_CCMR1.OC1PE cleared (17.4.7): CCR1 writes act at once, not at the next
  update event, and TIM8_EGR.UG (17.4.6) loads every shadow register at boot;
- TIM8_CR2.OIS1/OIS1N cleared (17.4.2): the idle level with MOE=0 is low
  (it only drives the pin when OSSI=1; pyb leaves OSSI=0, so with MOE=0 the
  pin is released and the 10 kOhm pull-down holds LASER_FIRE low);
- TIM8_BDTR.MOE (17.4.18): main output enable. A break clears it in hardware
  and AOE=0 keeps it cleared until software sets it again (a latched trip);
- TIM8_SMCR (17.4.3): slave trigger mode, started by ITR2 = TIM4_TRGO
  (table 86, "TIMx internal trigger connection");
- TIM4_CR2.MMS = OC3REF as TRGO (18.4.2) and TIM4 channel 3 in "active on
  match" (18.4.8, OC3M=001): the count compare, in hardware;
- TIM4_CCMR1.IC1F/IC2F (18.4.7): the encoder inputs' digital filter, which
  pyb's ENC_AB set-up leaves at 0 (no filter).

Register addresses are above 2**30: on the pyboard each is a big int. The
board uses the TIMx_REG constants below, folded by the compiler into one
constant object each, never a run-time sum (which would allocate: in the
interlock IRQ that is a MemoryError; boards/tests/irqlint.py checks it).
"""
from micropython import const

TIM8 = const(0x4001_0400)
TIM4 = const(0x4000_0800)
CR1 = const(0x00)
CR2 = const(0x04)
SMCR = const(0x08)
SR = const(0x10)
EGR = const(0x14)
CCMR1 = const(0x18)
CCMR2 = const(0x1C)
CNT = const(0x24)
ARR = const(0x2C)
CCR1 = const(0x34)
CCR3 = const(0x3C)
BDTR = const(0x44)

TIM8_CR1 = const(TIM8 + CR1)
TIM8_CR2 = const(TIM8 + CR2)
TIM8_SMCR = const(TIM8 + SMCR)
TIM8_SR = const(TIM8 + SR)
TIM8_EGR = const(TIM8 + EGR)
TIM8_CCMR1 = const(TIM8 + CCMR1)
TIM8_CNT = const(TIM8 + CNT)
TIM8_ARR = const(TIM8 + ARR)
TIM8_CCR1 = const(TIM8 + CCR1)
TIM8_BDTR = const(TIM8 + BDTR)
TIM4_CR2 = const(TIM4 + CR2)
TIM4_CCMR1 = const(TIM4 + CCMR1)
TIM4_CCMR2 = const(TIM4 + CCMR2)
TIM4_CCR3 = const(TIM4 + CCR3)

CR1_CEN = const(0x0001)
CR1_OPM = const(0x0008)
SR_UIF = const(0x0001)
EGR_UG = const(0x0001)
CCMR1_OC1PE = const(0x0008)
CR2_OIS1 = const(0x0100)
CR2_OIS1N = const(0x0200)
BDTR_MOE = const(0x8000)
SMCR_TRIGGER_ITR2 = const(0x0026)  # TS=010 (ITR2), SMS=110 (trigger mode)
CR2_MMS_OC3REF = const(0x0060)  # MMS=110
CCMR2_OC3M_MASK = const(0x0070)
OC3M_FORCE_LOW = const(0x0040)  # 100: OC3REF forced inactive
OC3M_ON_MATCH = const(0x0010)  # 001: OC3REF set active on CNT == CCR3, latched
# Encoder input filter, IC1F and IC2F = 1111: fDTS/32, N=8. TIM4 runs at
# 84 MHz with CKD=0 (fDTS = 84 MHz): a level must hold 8 x 32 / 84 MHz =
# 3.0 us to count. Edges of the handpiece's 5 lines/mm x4 strip come
# 500 us apart at 100 mm/s; cable ringing and spikes are shorter than 3 us.
CCMR1_IC12F_MASK = const(0xF0F0)
ENC_FILTER = const(0xF0F0)

TIMER_HZ = const(168_000_000)  # APB2 timer clock on the pyboard (2 x 84 MHz)
DELAY_TICKS = const(1)  # one tick from start to the rising edge
ENC_MASK = const(0xFFFF)  # TIM4 is 16 bits


def ticks_per_us(timer_hz):
    return timer_hz // 1_000_000


def pulse_arr(width_us, timer_hz):
    """TIM8_ARR for a pulse of exactly width_us (PWM mode 2, one-pulse):
    the output is active from CNT == CCR1 through CNT == ARR."""
    return DELAY_TICKS + width_us * ticks_per_us(timer_hz) - 1


def step16(last_raw, raw):
    """Signed change between two 16-bit counter readings (|change| < 32768)."""
    d = (raw - last_raw) & ENC_MASK
    return d - 0x10000 if d & 0x8000 else d
