"""Small pieces shared by the project's processes (signing service, agent desk)."""
