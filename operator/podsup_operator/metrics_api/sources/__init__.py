"""Where metric values come from: the broker (queue depth) and the pods (rates)."""
