"""Customer protection: erasure that leaves no trace (:mod:`.erasure`) and the register that keeps
an erased person from coming back (:mod:`.register`)."""
