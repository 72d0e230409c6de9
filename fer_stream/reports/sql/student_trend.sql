-- student_trend: per student across the lectures of a date range: attention and emotion per
-- lecture, the change against the student's own average, and a flag for attention that fell for
-- $falls lectures in a row.
--
-- Definitions (docs/ATTENTION.md, docs/REPORTS.md):
-- * one row per student per lecture in which the student is seen for at least $min_visible_s
--   seconds with at least one measured face (a lecture without a score cannot be compared).
-- * mean_attention = mean attention score of the student's measured faces in the lecture;
--   attention_rate = attentive / (attentive + inattentive) frames (not-visible frames excluded).
-- * usual_attention = the mean of the student's per-lecture mean_attention over the rows of this
--   report (each lecture weighs the same); attention_change = mean_attention - usual_attention.
--   p_<emotion> = mean probability in the lecture, p_<emotion>_change likewise against the
--   student's mean over the lectures; dominant_emotion = the most frequent label (ties: FER2013 order).
-- * fell = mean_attention lower than at the student's previous lecture in this report (equal is no
--   fall); fall_streak = falls in a row ending at this lecture; falling = fall_streak >= $falls;
--   student_falling = falling at any lecture of the student.
-- * lectures are ordered by lecture_date, then video_id; students are grouped by student_id.
-- Parameters: $course, $date_from, $date_to (inclusive), $student, $min_visible_s, $falls.

with

scope as (
    select video_id, course, lecture_date, frame_s
    from lectures_in($course, $date_from, $date_to, null)  -- a date range: every lecture in it
),

per_lecture as (
    select * from student_lectures($course, $date_from, $date_to, null, $student)  -- sql/_student_lectures.sql
),

kept as (
    select
        scope.course,
        scope.lecture_date,
        per_lecture.*,
        per_lecture.frames_visible * scope.frame_s / 60 as minutes_visible,
        per_lecture.frames_emotion_readable / per_lecture.frames_visible as emotion_readable_share,
        per_lecture.frames_measured / per_lecture.frames_visible as attention_readable_share,
        -- over readable frames only; none readable: no dominant emotion (docs/VALIDITY.md)
        case when per_lecture.frames_emotion_readable > 0 then
            ['angry', 'disgust', 'fear', 'happy', 'sad', 'surprise', 'neutral'][
                list_position(
                    [n_angry, n_disgust, n_fear, n_happy, n_sad, n_surprise, n_neutral],
                    greatest(n_angry, n_disgust, n_fear, n_happy, n_sad, n_surprise, n_neutral)
                )
            ]
        end as dominant_emotion
    from per_lecture
    inner join scope on per_lecture.video_id = scope.video_id
    where per_lecture.frames_visible * scope.frame_s >= $min_visible_s
        and per_lecture.mean_attention is not null
),

compared as (
    select
        *,
        row_number() over lectures_of_student as lecture_no,
        mean_attention < lag(mean_attention) over lectures_of_student as fell,
        avg(mean_attention) over (partition by student_id) as usual_attention,
        avg(p_angry) over (partition by student_id) as usual_p_angry,
        avg(p_disgust) over (partition by student_id) as usual_p_disgust,
        avg(p_fear) over (partition by student_id) as usual_p_fear,
        avg(p_happy) over (partition by student_id) as usual_p_happy,
        avg(p_sad) over (partition by student_id) as usual_p_sad,
        avg(p_surprise) over (partition by student_id) as usual_p_surprise,
        avg(p_neutral) over (partition by student_id) as usual_p_neutral
    from kept
    window lectures_of_student as (partition by student_id order by lecture_date, video_id)
),

streak_keys as (
    -- every lecture that is not a fall (the first one included) starts a new streak
    select
        *,
        sum(case when fell then 0 else 1 end) over (
            partition by student_id order by lecture_date, video_id rows unbounded preceding
        ) as streak_key
    from compared
),

streaks as (
    select
        *,
        row_number() over (
            partition by student_id, streak_key order by lecture_date, video_id
        ) - 1 as fall_streak
    from streak_keys
),

final as (
    select
        student_id,
        course,
        lecture_date,
        video_id,
        lecture_no,
        minutes_visible,
        mean_attention,
        usual_attention,
        mean_attention - usual_attention as attention_change,
        attention_rate,
        attention_readable_share,
        emotion_readable_share,
        coalesce(fell, false) as fell,
        fall_streak,
        fall_streak >= $falls as falling,
        bool_or(fall_streak >= $falls) over (partition by student_id) as student_falling,
        dominant_emotion,
        p_angry,
        p_angry - usual_p_angry as p_angry_change,
        p_disgust,
        p_disgust - usual_p_disgust as p_disgust_change,
        p_fear,
        p_fear - usual_p_fear as p_fear_change,
        p_happy,
        p_happy - usual_p_happy as p_happy_change,
        p_sad,
        p_sad - usual_p_sad as p_sad_change,
        p_surprise,
        p_surprise - usual_p_surprise as p_surprise_change,
        p_neutral,
        p_neutral - usual_p_neutral as p_neutral_change
    from streaks
    order by student_id, lecture_date, video_id
)

select * from final
