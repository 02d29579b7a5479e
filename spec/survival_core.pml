/*
 * survival_core.pml: the posture step and the order gate of dolphin's survival controller.
 *
 * One-to-one mirror of dolphin/survival/posture.py (posture_step, schmitt_target,
 * gate_verdict). Included by the verification model (survival.pml) and by the generated
 * trace-validation drivers. R_total is seen in whole percent (r_to_pct in controller.py).
 * Thresholds default to the shipped config and are overridden with -D from the real config.
 */
#ifndef DOWN_A
#define DOWN_A 85   /* APEX -> STALKER when R < DOWN_A */
#endif
#ifndef UP_A
#define UP_A 92     /* STALKER -> APEX when R >= UP_A */
#endif
#ifndef DOWN_S
#define DOWN_S 55
#endif
#ifndef UP_S
#define UP_S 65
#endif
#ifndef DOWN_T
#define DOWN_T 20
#endif
#ifndef UP_T
#define UP_T 25
#endif

#define APEX 0
#define STALKER 1
#define TURTLE 2
#define HIBERNATE 3

#define ENTRY 0
#define EXIT 1
#define CANCEL 2

#define ALLOW 0
#define DENY_KILLED 1
#define DENY_HIBERNATE 2
#define DENY_EXIT_ONLY 3
#define DENY_LIMIT_ONLY 4

/* BROKEN_* switches build deliberately broken variants; the test suite checks SPIN catches each. */
#ifdef BROKEN_HYST
/* deliberately broken: comes back up at the DOWN threshold (no hysteresis band) */
#define UPA DOWN_A
#define UPS DOWN_S
#define UPT DOWN_T
#else
#define UPA UP_A
#define UPS UP_S
#define UPT UP_T
#endif

inline schmitt_target(p, r, out) {
  if
  :: r < DOWN_T -> out = HIBERNATE
  :: r >= DOWN_T && r < DOWN_S -> out = TURTLE
  :: r >= DOWN_S && r < DOWN_A -> out = STALKER
  :: r >= DOWN_A -> out = APEX
  fi;
  if
  :: out > p -> skip
  :: else ->
     if
     :: p == HIBERNATE && r >= UPT -> out = TURTLE
     :: p == TURTLE && r >= UPS -> out = STALKER
     :: p == STALKER && r >= UPA -> out = APEX
     :: else -> out = p
     fi
  fi
}

inline posture_step(p, r, cap, killed, dwell_ok, out) {
  if
  :: killed -> out = HIBERNATE
  :: else ->
     schmitt_target(p, r, out);
     if
     :: cap > out -> out = cap
     :: else -> skip
     fi;
#ifndef BROKEN_DWELL
     if
     :: out < p && !(dwell_ok) -> out = p
     :: else -> skip
     fi
#endif
  fi
}

#ifndef BROKEN_KILL_LAG
#define GATE_ALIVE (!killed)
#else
#define GATE_ALIVE (true)   /* deliberately broken: the gate trusts the posture alone */
#endif

inline gate(p, killed, kind, taker, v) {
  if
  :: kind == CANCEL -> v = ALLOW
  :: else ->
     if
     :: !GATE_ALIVE -> v = DENY_KILLED
#ifndef BROKEN_GATE_HIB
     :: GATE_ALIVE && p == HIBERNATE -> v = DENY_HIBERNATE
#endif
     :: GATE_ALIVE && p != HIBERNATE && kind == EXIT -> v = ALLOW
     :: GATE_ALIVE && p == TURTLE && kind == ENTRY -> v = DENY_EXIT_ONLY
     :: GATE_ALIVE && p == STALKER && kind == ENTRY && taker -> v = DENY_LIMIT_ONLY
     :: else -> v = ALLOW
     fi
  fi
}
