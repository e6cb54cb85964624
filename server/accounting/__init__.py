"""Money: what a call may spend (budget policy), what was spent (attempt accounting), and the cost report."""
