"""Schedule: a campaign's interview slots as the recruiter sees and changes them."""
