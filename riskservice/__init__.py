"""Share-risk service: decisions before every coupon share, review and graph scoring."""
