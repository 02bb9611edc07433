"""`qcode bench --quality`: how often the model's answers are right, measured by running them."""
