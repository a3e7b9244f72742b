"""What customers pay, beside what they cost: revenue lines (Stripe, imports) and margin."""
