"""Instance operators: teams across the instance, their approval, suspension and quotas, and team invites."""
